"""Event contract, topic catalogue and the faust stream worker."""
