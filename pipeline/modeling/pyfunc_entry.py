"""MLflow "models from code" entry point for the loyalty pyfunc.

MLflow executes this file when it loads a logged model; it declares the pyfunc defined in
:mod:`pipeline.tracking` (the only module that imports mlflow). Nothing is unpickled: the
pyfunc rebuilds the predictor from ``model.txt``, ``calibration.json`` and ``features.json``.
The loading environment needs the ``loyalty-pipeline`` package installed.
"""

from pipeline.tracking import set_pyfunc_model

set_pyfunc_model()
