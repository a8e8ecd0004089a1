"""Running convbench on a Dask distributed cluster: sharded verification and fleet benchmarks.

Layer 7 of the architecture: above :mod:`harness.verify` and :mod:`harness.bench` (whose work it
ships to Dask workers), below :mod:`harness.cli`. Dask is imported only inside these modules' functions
that need it, so ``import harness`` stays light.

- :mod:`harness.distributed.cluster`: a client for an embedded ``LocalCluster`` or an existing scheduler.
- :mod:`harness.distributed.shipping`: plug-in files sent to the workers and loaded there.
- :mod:`harness.distributed.sharded_verify`: :func:`verify_on_cluster`, the verifier's cases in shards.
- :mod:`harness.distributed.fleet`: the same benchmark suite on every machine of the cluster.
"""
