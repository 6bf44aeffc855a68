"""Anatomy: the bundled MNI152 template, tissue maps, and carrying them to a subject."""
