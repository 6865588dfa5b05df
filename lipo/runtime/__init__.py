"""Where and on what a process runs: devices, processes, locks, work folders."""
