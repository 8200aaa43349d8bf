"""The demo: generated data (an MPD-format catalog, audio clips, a video–music set) and the job that builds everything from it."""
