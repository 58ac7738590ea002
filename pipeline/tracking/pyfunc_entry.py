"""MLflow "models from code" entry point for the loyalty pyfunc.

MLflow executes this file when it loads a logged model; it declares the pyfunc defined in
:mod:`pipeline.tracking.pyfunc`. Nothing is unpickled: the pyfunc rebuilds the predictor from
``model.txt``, ``calibration.json`` and ``features.json``. The loading environment needs the
``loyalty-pipeline`` package installed. (Models logged before ``pipeline.tracking`` became a
package carry a copy that imports ``set_pyfunc_model`` from ``pipeline.tracking``, which still
exports it.)
"""

from pipeline.tracking.pyfunc import set_pyfunc_model

set_pyfunc_model()
