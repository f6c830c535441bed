"""The peer side of bench case 5: the house-price pipeline as one scikit-learn `Pipeline` (feature-engine
transformers, one-hot, ridge on log price), fitted once and pickled, then `Pipeline.predict` on a batch
file, written to CSV — what `mlpipe predict RUN --input FILE -o out.csv` does.

    python house_prices_predict.py fit TRAIN.csv MODEL.pkl
    python house_prices_predict.py predict MODEL.pkl DATA.csv OUT.csv
"""
import pickle
import sys

import numpy as np
import pandas as pd
from feature_engine.encoding import OneHotEncoder, OrdinalEncoder, RareLabelEncoder
from feature_engine.imputation import AddMissingIndicator, CategoricalImputer, MeanMedianImputer
from sklearn.compose import TransformedTargetRegressor
from sklearn.linear_model import Ridge
from sklearn.pipeline import Pipeline

QUALITY = ["ExterQual", "ExterCond", "BsmtQual", "BsmtCond", "HeatingQC", "KitchenQual",
           "FireplaceQu", "GarageQual", "GarageCond", "PoolQC"]
SCALE = ["Missing", "Po", "Fa", "TA", "Gd", "Ex"]


def read(path):
    return pd.read_csv(path, keep_default_na=False, na_values=["NA"], dtype={"MSSubClass": str})


class ExplicitOrder(OrdinalEncoder):
    """feature-engine's OrdinalEncoder with a fixed category order (mlpipe's `method = "explicit"`)."""

    def fit(self, X, y=None):
        super().fit(X, y)
        self.encoder_dict_ = {c: {v: float(i) for i, v in enumerate(SCALE)} for c in self.variables_}
        return self


def build(train_path):
    """The fitted scikit-learn Pipeline (also used by mlflow_model.py)."""
    df = read(train_path)
    df = df[df.YrSold < 2010]
    X, y = df.drop(columns=["Id", "SalePrice"]), df.SalePrice
    numeric = [c for c in X.columns if pd.api.types.is_numeric_dtype(X[c])]
    categorical = [c for c in X.columns if c not in numeric]
    rest = [c for c in categorical if c not in QUALITY]
    pipe = Pipeline([
        ("indicator", AddMissingIndicator(variables=numeric)),
        ("median", MeanMedianImputer(imputation_method="median", variables=numeric)),
        ("missing", CategoricalImputer(fill_value="Missing", variables=categorical)),
        ("quality", ExplicitOrder(encoding_method="arbitrary", variables=QUALITY, unseen="encode")),
        ("rare", RareLabelEncoder(tol=0.01, n_categories=1, variables=rest)),
        ("onehot", OneHotEncoder(variables=rest)),
        ("ridge", TransformedTargetRegressor(Ridge(alpha=10.0), func=np.log, inverse_func=np.exp)),
    ])
    return pipe.fit(X, y)


def fit(train_path, model_path):
    with open(model_path, "wb") as f:
        pickle.dump(build(train_path), f)


def predict(model_path, data_path, out_path):
    with open(model_path, "rb") as f:
        pipe = pickle.load(f)
    df = read(data_path)
    pred = pipe.predict(df.drop(columns=[c for c in ("SalePrice",) if c in df.columns]).drop(columns=["Id"]))
    pd.DataFrame({"Id": df.Id, "prediction": pred}).to_csv(out_path, index=False)


if __name__ == "__main__":
    if sys.argv[1] == "fit":
        fit(sys.argv[2], sys.argv[3])
    else:
        predict(sys.argv[2], sys.argv[3], sys.argv[4])
