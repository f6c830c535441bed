"""The peer side of bench case 6: the same fitted scikit-learn Pipeline as case 5, saved as an MLflow
model so that `mlflow models serve` can serve it.

    python mlflow_model.py TRAIN.csv MODEL_DIR
"""
import pathlib
import shutil
import sys

import mlflow.sklearn

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import house_prices_predict  # noqa: E402  (the Pipeline's custom encoder lives there)

train, out = sys.argv[1], pathlib.Path(sys.argv[2])
shutil.rmtree(out, ignore_errors=True)
pipe = house_prices_predict.build(train)
# MLflow 3 saves with skops and refuses types it does not know unless they are named as trusted.
trusted = sorted({f"{type(step).__module__}.{type(step).__qualname__}" for _, step in pipe.steps[:-1]})
mlflow.sklearn.save_model(pipe, out, code_paths=[house_prices_predict.__file__], skops_trusted_types=trusted)
