"""The cluster boundary: a job for the locked image, written for the engine a team runs
(Slurm, Kubernetes). Each engine renders the same :class:`~reprolock.jobs.interface.JobSpec`."""
