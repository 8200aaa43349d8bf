"""Evaluation jobs: playlist continuation, the seq2seq continuation source and video-to-music retrieval."""
