"""Training jobs: collaborative filtering (ALS, BPR), the playlist encoder and the video–text–music model."""
