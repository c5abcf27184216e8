"""Spark engine (``engine: spark``): the same features, labels and scores on a cluster, no second copy of the logic.

The event log (the big table) stays distributed. Partners and contracts (one row per partner or
contract) are read and validated on the driver by the local code and shipped to the executors.
Events are grouped by partner into partitions (``spark.partitions``); each partition runs the
local engine (:mod:`churnmodel.features.local`), the shared derivations (:mod:`churnmodel.features.derive`) and the label code
(:mod:`churnmodel.labels`) on its partners. The only facts that cross partners — network revenue
and the strategic core — are computed by Spark over the whole log (:func:`network`) with the same
:func:`~churnmodel.features.local.strategic_core` rule, and handed to every partition.

Modules: :mod:`.io` (session, reading and checking the inputs, writing Parquet), :mod:`.network`
(the facts that cross partners), :mod:`.frames` (training and scoring feature frames per partner
partition), :mod:`.scoring` (the ranked list).

>>> spark = session(config.spark)                                           # doctest: +SKIP
>>> inputs = read_inputs(spark, config.data)                                # doctest: +SKIP
>>> frame, plan = training_frame(inputs, config)     # a Spark DataFrame    # doctest: +SKIP
"""

from churnmodel.spark.frames import frame_summary, restore, scoring_frame, to_pandas, training_frame
from churnmodel.spark.io import (
           SparkInputs,
           collect,
           event_summary,
           profile,
           read_events,
           read_inputs,
           session,
           write_parquet,
)
from churnmodel.spark.network import network
from churnmodel.spark.scoring import score, score_summary

__all__ = ["SparkInputs", "collect", "event_summary", "frame_summary", "network", "profile", "read_events", "read_inputs", "restore", "score",
           "score_summary", "scoring_frame", "session", "to_pandas", "training_frame", "write_parquet"]
