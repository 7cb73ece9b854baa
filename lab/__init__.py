"""The lab: experiments and analysis that the notebooks call (notebooks narrate, this computes)."""
