"""Drift-aware retraining: profile training data, compare new data with the champion's, decide whether to train.

Pure Python and the stdlib `csv` module, so importing this package costs no third-party import and
numpy need not become a runtime dependency. Measured (2 shared cores, 22-column CSV, 4 MB chunks):
the check runs at 12-16 MB/s with a peak RSS of 62 MB from 16 MB to 1 GB of data (50 MB for the
interpreter and the bench's data pool); parsing the numeric cells with numpy instead
(`np.array(cells, float)`, sort, `searchsorted`) ran at 16.5 against 15.6 MB/s on 64 MB, the same
peak memory: converting Python strings dominates either way (`float()` at about 240 ns a value).
`bench/figures/drift.py` measures it beside reading the same bytes unparsed.

    profile = build_profile(Source(blob.chunks(), "data.csv", label="Class"))   # keep with the model
    report, new_profile = check(champion_profile, Source(chunks, "data.csv", label="Class"))
    decision = decide(parse_retrain_when(definition.get("retrainWhen")), report, champion_age)

Modules: `reader` (streaming CSV/TSV/ARFF), `profile` (`Profile`, one pass, flat memory), `compare`
(PSI, KS, label shift, growth, schema: `DriftReport`), `policy` (`RetrainWhen`, `decide`).
"""

from __future__ import annotations

from .compare import EPSILON, ColumnDrift, DriftReport, SchemaDifferences, check, compare, psi, tvd
from .policy import Condition, Decision, RetrainWhen, SchemaChangedError, decide, parse_retrain_when
from .profile import KS_POINTS, PSI_BINS, SAMPLE_SIZE, TOP_CATEGORIES, ColumnProfile, Profile, build_profile
from .reader import Kind, Source

__all__ = [
    "EPSILON",
    "KS_POINTS",
    "PSI_BINS",
    "SAMPLE_SIZE",
    "TOP_CATEGORIES",
    "ColumnDrift",
    "ColumnProfile",
    "Condition",
    "Decision",
    "DriftReport",
    "Kind",
    "Profile",
    "RetrainWhen",
    "SchemaChangedError",
    "SchemaDifferences",
    "Source",
    "build_profile",
    "check",
    "compare",
    "decide",
    "parse_retrain_when",
    "psi",
    "tvd",
]
