"""Reusable Qt widgets; each is a view of a state object it is given."""
