"""The submit stage: any cvray command as a Ray Job (``cvray submit``) and the jobs it made
(``cvray jobs list | status | logs | stop``), through Ray's Jobs API."""
