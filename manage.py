#!/usr/bin/env python
from bulletin.cli import main

if __name__ == "__main__":
    main()
