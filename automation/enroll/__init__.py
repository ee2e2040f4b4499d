"""Who enters each journey at `now`."""
