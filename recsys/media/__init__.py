"""Media input: audio files (and soundtracks) decoded to arrays."""
