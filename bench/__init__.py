"""`make bench`: the runner (run.py), the stack it measures on (stack.py) and one module per figure (figures/)."""
