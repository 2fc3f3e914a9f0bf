"""Batch tracking on Dask: many movies, one command, from a laptop to a cluster.

    summary = sam2_plugins.track_many("movies/", "results/")    # a LocalCluster sized to this machine
    summary = sam2_plugins.track_many("manifest.csv", "results/", scheduler="tcp://10.0.0.5:8786")

Dask itself is imported only when a batch runs (``pip install 'sam2-plugins[dask]'``; HPC queues also need
``sam2-plugins[cluster]``). See docs/batch.md.
"""

from .movies import MANIFEST_HELP, Movie, find_movies
from .run import track_many
from .summary import BatchSummary
from .worker import TrackOptions

__all__ = ["track_many", "TrackOptions", "BatchSummary", "Movie", "find_movies", "MANIFEST_HELP"]
