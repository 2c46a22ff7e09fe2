"""Charts of the book (Altair, offline) and their phone layouts."""
