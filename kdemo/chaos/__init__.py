"""`kdemo chaos`: drive flows while injecting faults, then audit what the stack kept.

faults.py plans and injects the faults, driver.py runs the flows, audit.py checks the
services' tables and the stream against the answers they gave, run.py ties them together.
Nothing is imported here: `kdemo --help` reads faults.py's names without loading the wallet
and the bus client that run.py needs.
"""
