"""The MLflow pyfunc of a churnmodel model, logged as code ("models from code").

MLflow stores this file and the model's plain files (LightGBM text model, JSON); loading runs this
file, which reads them. Nothing is pickled, so loading a model runs no stored bytecode.
Input: a feature frame with the model's feature columns. Output: calibrated churn probabilities and,
for a model trained with ``label.horizons``, the survival columns the scored list has
(``p_churn_<h>d``, ``expected_months_active``, ``median_months_to_churn``).
"""

import mlflow
import pandas as pd
from mlflow.pyfunc import PythonModel

from churnmodel.model import ChurnModel


class ChurnPyfunc(PythonModel):
    def load_context(self, context) -> None:
        self.model = ChurnModel.load(context.artifacts["model"])

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        frame = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
        X = self.model.prepare(frame)
        out = pd.DataFrame({"churn_probability": self.model.probabilities(X)}, index=frame.index)
        if self.model.hazard is not None:
            out = pd.concat([out, self.model.horizon_frame(X, probability=out['churn_probability'].to_numpy())], axis=1)
        return out


mlflow.models.set_model(ChurnPyfunc())
