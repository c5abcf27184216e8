"""The MLflow pyfunc of a churnmodel model, logged as code ("models from code").

MLflow stores this file and the model's plain files (LightGBM text model, JSON); loading runs this
file, which reads them. Nothing is pickled, so loading a model runs no stored bytecode.
Input: a feature frame with the model's feature columns. Output: calibrated churn probabilities.
"""

import mlflow
import pandas as pd
from mlflow.pyfunc import PythonModel


class ChurnPyfunc(PythonModel):
    def load_context(self, context) -> None:
        from churnmodel.model import ChurnModel

        self.model = ChurnModel.load(context.artifacts["model"])

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        frame = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
        return pd.DataFrame({"churn_probability": self.model.predict_proba(frame)}, index=frame.index)


mlflow.models.set_model(ChurnPyfunc())
