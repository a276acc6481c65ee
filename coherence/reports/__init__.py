"""Reports: render a RunReport; they never compute."""
