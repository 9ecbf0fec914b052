"""The perception survey: runs that may span several calls or messages, answers, consent counts."""
