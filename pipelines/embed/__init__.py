"""Embedding jobs: vectors of tracks (audio, music for video) and playlists into the vector store."""
