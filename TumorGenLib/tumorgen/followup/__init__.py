"""Synthetic follow-ups: a tumor-size series forecast to a day, the tumor regrown to it, and the follow-up scan."""
