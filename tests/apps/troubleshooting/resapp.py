# A single-module application that finds its data file through __file__.
import os

def read_resource():
    with open(os.path.join(os.path.dirname(__file__), 'data.txt')) as f:
        return f.read()
