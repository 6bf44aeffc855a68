"""Simulated subjects from the MNI152 template: anatomy, tumors with mass effect, four contrasts, resections, time series.

See :mod:`tumorgen.simulate.subject` for the stages, :mod:`tumorgen.simulate.contrasts`
for the imaging model and :mod:`tumorgen.simulate.writer` for the case layout.
"""

from tumorgen.simulate.subject import (  # noqa: F401
    CAVITY_LABEL,
    SimulatedSubject,
    SimulationOptions,
    auto_resection_box,
    postoperative,
    simulate_subject,
    time_series,
)
