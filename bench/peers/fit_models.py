"""Fit times of scikit-learn's estimators, the peer side of the model benchmark (bench/run.py,
`case_models`): the same data file, the same estimators and hyperparameters as the mlpipe pipelines
the benchmark writes; only `fit` is timed (reading the file is not).

    python fit_models.py DATA.csv            # OLS, ridge, lasso, logistic on the generated table
    python fit_models.py --stacking          # the house-price stacking of three base models

Prints one JSON object: estimator -> seconds.
"""
import json
import pathlib
import sys
import time

import numpy as np
import pandas as pd


def generated(path):
    from sklearn.linear_model import Lasso, LinearRegression, LogisticRegression, Ridge

    df = pd.read_csv(path)
    features = [c for c in df.columns if c.startswith("x")]
    # The mlpipe side trains on a random 99 %: so does this one.
    train = df.sample(frac=0.99, random_state=0)
    X = train[features].to_numpy(float)
    out = {}
    for name, make, target in [
        ("linear_regression", lambda: LinearRegression(), "y"),
        ("ridge", lambda: Ridge(alpha=1.0), "y"),
        ("lasso", lambda: Lasso(alpha=0.01), "y"),
        ("logistic_regression", lambda: LogisticRegression(C=1.0), "label"),
    ]:
        y = train[target].to_numpy(float if target == "y" else int)
        start = time.perf_counter()
        make().fit(X, y)
        out[name] = time.perf_counter() - start
    return out


def stacking():
    """pipelines/house-prices.toml's design (bench/peers/house_prices.py's steps) and a stacking of
    ridge, gradient boosting and a random forest on 5-fold out-of-fold predictions, final ridge."""
    from sklearn.ensemble import GradientBoostingRegressor, RandomForestRegressor, StackingRegressor
    from sklearn.linear_model import Ridge

    here = pathlib.Path(__file__).resolve().parent
    ns = {"__file__": str(here / "house_prices.py")}
    sys.argv = [sys.argv[0]]
    code = (here / "house_prices.py").read_text().split("model = Ridge(")[0]
    exec(compile(code, "house_prices.py", "exec"), ns)
    train, features = ns["train"], ns["features"]
    X, y = train[features].to_numpy(float), np.log(train.SalePrice.to_numpy(float))
    model = StackingRegressor(
        [("ridge", Ridge(alpha=10.0)),
         ("gbr", GradientBoostingRegressor(n_estimators=200, max_depth=3, random_state=0)),
         ("forest", RandomForestRegressor(n_estimators=100, max_features=0.3, random_state=0))],
        final_estimator=Ridge(alpha=1.0), cv=5)
    start = time.perf_counter()
    model.fit(X, y)
    return {"stacking": time.perf_counter() - start}


if __name__ == "__main__":
    print(json.dumps(stacking() if sys.argv[1] == "--stacking" else generated(sys.argv[1])))
