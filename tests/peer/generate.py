"""Runs the peers (pandas, feature-engine, scikit-learn) on the same data and steps as
tests/peer/*.toml and writes tests/peer/expected.json, which tests/peer.rs compares against.

    pip install pandas==3.1.1 scikit-learn==1.9.1 feature-engine==1.9.4 numpy==2.4.6 mpmath==1.4.1
    python3 tests/peer/generate.py
"""
import json
import pathlib
import sys

import numpy as np
import pandas as pd
import sklearn
import feature_engine
from feature_engine.encoding import RareLabelEncoder
from feature_engine.imputation import AddMissingIndicator, CategoricalImputer, MeanMedianImputer
from sklearn.linear_model import LinearRegression, Ridge
from sklearn.metrics import mean_absolute_error, r2_score, root_mean_squared_error
from sklearn.preprocessing import OneHotEncoder

HERE = pathlib.Path(__file__).resolve().parent
DATA = HERE.parent.parent / "data-snapshots" / "house-prices" / "train.csv"
QUALITY = ["ExterQual", "ExterCond", "BsmtQual", "BsmtCond", "HeatingQC", "KitchenQual",
           "FireplaceQu", "GarageQual", "GarageCond", "PoolQC"]
SCALE = ["Missing", "Po", "Fa", "TA", "Gd", "Ex"]


def read(dtype=None, usecols=None):
    # "NA" is the only missing marker; "None" (MasVnrType) is a real category.
    return pd.read_csv(DATA, keep_default_na=False, na_values=["NA"], dtype=dtype, usecols=usecols)


def one_hot(train, test, columns, drop=None):
    enc = OneHotEncoder(handle_unknown="ignore", sparse_output=False, drop=drop)
    enc.fit(train[columns])
    names = list(enc.get_feature_names_out(columns))
    out = []
    for df in (train, test):
        dummies = pd.DataFrame(enc.transform(df[columns]), columns=names, index=df.index)
        out.append(pd.concat([df.drop(columns=columns), dummies], axis=1))
    return out[0], out[1], names


def ridge_reference(X, y, alpha):
    """The ridge solution in extended precision (numpy longdouble, 64-bit mantissa): centred normal
    equations, Cholesky, then refinement with residuals computed through X. Scikit-learn's float64
    solvers are themselves off by up to ~1e-7 relative on this ill-conditioned design; this is the
    yardstick for both."""
    X = X.astype(np.longdouble)
    y = y.astype(np.longdouble)
    Xc, yc = X - X.mean(0), y - y.mean()
    n = X.shape[1]
    A = Xc.T @ Xc + np.longdouble(alpha) * np.eye(n, dtype=np.longdouble)
    L = np.zeros_like(A)
    for j in range(n):
        L[j, j] = np.sqrt(A[j, j] - np.sum(L[j, :j] ** 2))
        L[j + 1:, j] = (A[j + 1:, j] - L[j + 1:, :j] @ L[j, :j]) / L[j, j]

    def solve(b):
        z = np.zeros(n, dtype=np.longdouble)
        for i in range(n):
            z[i] = (b[i] - L[i, :i] @ z[:i]) / L[i, i]
        w = np.zeros(n, dtype=np.longdouble)
        for i in reversed(range(n)):
            w[i] = (z[i] - L[i + 1:, i] @ w[i + 1:]) / L[i, i]
        return w

    w = solve(Xc.T @ yc)
    for _ in range(3):
        w = w + solve(Xc.T @ (yc - Xc @ w) - np.longdouble(alpha) * w)
    intercept = y.mean() - X.mean(0) @ w
    return [float(v) for v in w], float(intercept)


def metrics(y, p):
    return {"rmse": root_mean_squared_error(y, p), "mae": mean_absolute_error(y, p), "r2": r2_score(y, p)}


def ridge_case():
    df = read(dtype={"MSSubClass": str})
    train, test = df[df.YrSold != 2010].copy(), df[df.YrSold == 2010].copy()
    protected = ["Id", "SalePrice"]
    numeric = [c for c in train.columns if c not in protected and pd.api.types.is_numeric_dtype(train[c])]
    categorical = [c for c in train.columns if c not in protected and c not in numeric]

    # analyse: the profile of the train split
    profile = {}
    for c in numeric:
        s = train[c]
        q1, q3 = s.quantile(0.25), s.quantile(0.75)
        outliers = int(((s < q1 - 1.5 * (q3 - q1)) | (s > q3 + 1.5 * (q3 - q1))).sum())
        profile[c] = {"missing": int(s.isna().sum()), "distinct": int(s.nunique()), "min": float(s.min()),
                      "max": float(s.max()), "mean": float(s.mean()), "std": float(s.std()), "skew": float(s.skew()),
                      "outliers": outliers}
    for c in categorical:
        s = train[c]
        rare = int((s.value_counts(normalize=True) < 0.01).sum())
        profile[c] = {"missing": int(s.isna().sum()), "distinct": int(s.nunique()), "rare_labels": rare}
    # pandas' pairwise Pearson over the numeric columns (Id and SalePrice included, as in the profile)
    corr = train[["Id"] + numeric + ["SalePrice"]].corr()
    names = list(corr.columns)
    correlations = [[a, b, float(corr.loc[a, b])] for i, a in enumerate(names) for b in names[i + 1:]
                     if abs(corr.loc[a, b]) > 0.8]

    indicator = AddMissingIndicator(variables=numeric, missing_only=True).fit(train)
    train, test = (indicator.transform(d) for d in (train, test))
    imputer = MeanMedianImputer(imputation_method="median", variables=numeric).fit(train)
    medians = {k: float(v) for k, v in imputer.imputer_dict_.items()}
    train, test = (imputer.transform(d) for d in (train, test))
    cat_imp = CategoricalImputer(imputation_method="missing", fill_value="Missing", variables=categorical).fit(train)
    train, test = (cat_imp.transform(d) for d in (train, test))

    mapping = {v: float(i) for i, v in enumerate(SCALE)}
    for d in (train, test):
        for c in QUALITY:
            d[c] = d[c].map(mapping)
    rest = [c for c in categorical if c not in QUALITY]

    rare = RareLabelEncoder(tol=0.01, n_categories=1, variables=rest).fit(train)
    frequent = {k: sorted(v) for k, v in rare.encoder_dict_.items()}
    train, test = (rare.transform(d) for d in (train, test))

    train, test, dummies = one_hot(train, test, rest)
    features = [c for c in train.columns if c not in protected]
    X, y = train[features].to_numpy(float), np.log(train.SalePrice.to_numpy(float))
    model = Ridge(alpha=10.0).fit(X, y)
    # The design is ill-conditioned (GrLivArea = 1stFlrSF + 2ndFlrSF + LowQualFinSF; scales from 0/1
    # to 1e5), so float64 solvers differ in the last digits: keep an extended-precision reference too.
    reference, reference_intercept = ridge_reference(X, y, 10.0)
    predict = lambda d: np.exp(model.predict(d[features].to_numpy(float)))
    return {
        "pipeline": "house-prices-ridge.toml",
        "train_rows": len(train), "test_rows": len(test),
        "profile": profile,
        "correlations": correlations,
        "medians": medians,
        "indicators": [f"{c}_na" for c in indicator.variables_],
        "rare_frequent": frequent,
        "one_hot_columns": dummies,
        "features": features,
        "coefficients": dict(zip(features, map(float, model.coef_))),
        "coefficients_reference": dict(zip(features, reference)),
        "intercept_reference": reference_intercept,
        "intercept": float(model.intercept_),
        "condition_number": float(np.linalg.cond((X - X.mean(0)).T @ (X - X.mean(0)) + 10.0 * np.eye(X.shape[1]))),
        "test_metrics": metrics(test.SalePrice, predict(test)),
        "train_metrics": metrics(train.SalePrice, predict(train)),
    }


def ols_case():
    cols = ["Id", "SalePrice", "LotArea", "LotFrontage", "OverallQual", "OverallCond", "YearBuilt",
            "GrLivArea", "TotalBsmtSF", "GarageCars", "Neighborhood", "YrSold"]
    df = read(usecols=cols)
    train, test = df[df.YrSold < 2009].copy(), df[df.YrSold >= 2009].copy()
    numeric = [c for c in cols if c not in ("Id", "SalePrice", "Neighborhood")]
    imputer = MeanMedianImputer(imputation_method="mean", variables=numeric).fit(train)
    means = {k: float(v) for k, v in imputer.imputer_dict_.items()}
    train, test = (imputer.transform(d) for d in (train, test))
    train, test, _ = one_hot(train, test, ["Neighborhood"], drop="first")
    features = [c for c in train.columns if c not in ("Id", "SalePrice")]
    model = LinearRegression().fit(train[features].to_numpy(float), np.log(train.SalePrice.to_numpy(float)))
    predict = lambda d: np.exp(model.predict(d[features].to_numpy(float)))
    return {
        "pipeline": "house-prices-ols.toml",
        "means": means,
        "features": features,
        "coefficients": dict(zip(features, map(float, model.coef_))),
        "intercept": float(model.intercept_),
        "test_metrics": metrics(test.SalePrice, predict(test)),
    }


def transform_case():
    from feature_engine.outliers import Winsorizer
    from feature_engine.transformation import LogTransformer, PowerTransformer, ReciprocalTransformer
    from sklearn.preprocessing import MinMaxScaler, RobustScaler, StandardScaler

    cols = ["Id", "SalePrice", "LotFrontage", "LotArea", "OverallQual", "YearBuilt", "MasVnrArea",
            "TotalBsmtSF", "GrLivArea", "GarageArea", "YrSold"]
    df = read(usecols=cols).astype(float)
    train, test = df[df.YrSold != 2010].copy(), df[df.YrSold == 2010].copy()
    numeric = [c for c in df.columns if c not in ("Id", "SalePrice")]
    imp = MeanMedianImputer(imputation_method="median", variables=numeric).fit(train)
    train, test = imp.transform(train), imp.transform(test)
    caps = {}
    steps = [("LotArea", dict(capping_method="gaussian", tail="both", fold=3)),
             ("GrLivArea", dict(capping_method="iqr", tail="right", fold=1.5)),
             ("TotalBsmtSF", dict(capping_method="quantiles", tail="both", fold=0.05)),
             ("GarageArea", dict(capping_method="mad", tail="both", fold=3.29))]
    for col, kw in steps:
        w = Winsorizer(variables=[col], **kw).fit(train)
        caps[col] = {"low": w.left_tail_caps_.get(col), "high": w.right_tail_caps_.get(col)}
        train, test = w.transform(train), w.transform(test)
    for t in (LogTransformer(variables=["LotArea"]), PowerTransformer(variables=["GrLivArea"], exp=0.5),
              ReciprocalTransformer(variables=["YearBuilt"])):
        t.fit(train)
        train, test = t.transform(train), t.transform(test)
    scalers = {}
    for name, scaler, columns in [("standard", StandardScaler(), ["LotFrontage", "LotArea", "GrLivArea"]),
                                  ("robust", RobustScaler(), ["TotalBsmtSF", "MasVnrArea"]),
                                  ("min_max", MinMaxScaler(feature_range=(-1, 1)), ["OverallQual", "YearBuilt", "GarageArea"])]:
        scaler.fit(train[columns])
        if name == "standard":
            scalers[name] = {c: {"center": float(m), "scale": float(s)} for c, m, s in zip(columns, scaler.mean_, scaler.scale_)}
        elif name == "robust":
            scalers[name] = {c: {"center": float(m), "scale": float(s)} for c, m, s in zip(columns, scaler.center_, scaler.scale_)}
        else:
            scalers[name] = {c: {"center": float(m), "scale": float(s)} for c, m, s in zip(columns, scaler.data_min_, scaler.data_range_)}
        train[columns] = scaler.transform(train[columns])
        test[columns] = scaler.transform(test[columns])
    features = [c for c in train.columns if c not in ("Id", "SalePrice")]
    model = Ridge(alpha=1.0).fit(train[features].to_numpy(float), np.log(train.SalePrice.to_numpy(float)))
    predict = lambda d: np.exp(model.predict(d[features].to_numpy(float)))
    return {
        "pipeline": "house-prices-transform.toml",
        "caps": caps,
        "scalers": scalers,
        "train_values": {c: [float(v) for v in train[c].to_numpy()[:50]] for c in features},
        "test_metrics": metrics(test.SalePrice, predict(test)),
    }


def encode_select_case():
    from feature_engine.encoding import CountFrequencyEncoder, MeanEncoder, OrdinalEncoder
    from feature_engine.imputation import EndTailImputer
    from feature_engine.selection import DropConstantFeatures, DropCorrelatedFeatures, DropDuplicateFeatures

    df = read(dtype={"MSSubClass": str})
    train, test = df[df.YrSold != 2010].copy(), df[df.YrSold == 2010].copy()
    protected = ["Id", "SalePrice"]
    numeric = [c for c in train.columns if c not in protected and pd.api.types.is_numeric_dtype(train[c])]
    categorical = [c for c in train.columns if c not in protected and c not in numeric]
    y = train.SalePrice
    tails = {}
    for col, method in [("LotFrontage", "gaussian"), ("MasVnrArea", "iqr")]:
        t = EndTailImputer(imputation_method=method, tail="right", fold=3, variables=[col]).fit(train)
        tails[col] = float(t.imputer_dict_[col])
        train, test = t.transform(train), t.transform(test)
    med = MeanMedianImputer(imputation_method="median", variables=numeric).fit(train)
    train, test = med.transform(train), med.transform(test)
    cat = CategoricalImputer(fill_value="Missing", variables=categorical).fit(train)
    train, test = cat.transform(train), cat.transform(test)

    freq = CountFrequencyEncoder(encoding_method="frequency", variables=["Neighborhood", "Exterior1st"], unseen="encode").fit(train)
    mean = MeanEncoder(smoothing=10, variables=["MSZoning", "HouseStyle"], unseen="encode").fit(train, y)
    ordered = OrdinalEncoder(encoding_method="ordered", variables=["KitchenQual", "BsmtQual"], unseen="encode").fit(train, y)
    for enc in (freq, mean, ordered):
        train, test = enc.transform(train), enc.transform(test)
    rest = [c for c in categorical if c not in ("Neighborhood", "Exterior1st", "MSZoning", "HouseStyle", "KitchenQual", "BsmtQual")]
    train, test, _ = one_hot(train, test, rest)

    features = [c for c in train.columns if c not in protected]
    dropped = {}
    for name, sel in [("constant", DropConstantFeatures(tol=0.998, variables=features)),
                      ("duplicates", DropDuplicateFeatures(variables=None)),
                      ("correlated", DropCorrelatedFeatures(method="pearson", threshold=0.8))]:
        X = train[features]
        sel.fit(X)
        # DropDuplicateFeatures returns a set (its order is Python's hash order): compare sorted.
        dropped[name] = sorted(sel.features_to_drop_) if name == "duplicates" else list(sel.features_to_drop_)
        features = [c for c in features if c not in sel.features_to_drop_]
    model = Ridge(alpha=10.0).fit(train[features].to_numpy(float), np.log(y.to_numpy(float)))
    predict = lambda d: np.exp(model.predict(d[features].to_numpy(float)))
    return {
        "pipeline": "house-prices-encode-select.toml",
        "end_tail": tails,
        "frequency": {k: {str(c): float(v) for c, v in m.items()} for k, m in freq.encoder_dict_.items()},
        "mean_target": {k: {str(c): float(v) for c, v in m.items()} for k, m in mean.encoder_dict_.items()},
        "ordinal_target": {k: sorted(m, key=m.get) for k, m in ordered.encoder_dict_.items()},
        "dropped": dropped,
        "features": features,
        "test_metrics": metrics(test.SalePrice, predict(test)),
    }


def create_select_case():
    from feature_engine.creation import MathFeatures, RelativeFeatures
    from feature_engine.discretisation import ArbitraryDiscretiser, EqualFrequencyDiscretiser, EqualWidthDiscretiser
    from sklearn.feature_selection import SelectKBest, f_regression

    cols = ["Id", "SalePrice", "LotArea", "OverallQual", "YearBuilt", "1stFlrSF", "2ndFlrSF", "GrLivArea",
            "GarageArea", "TotalBsmtSF", "LotFrontage", "MasVnrArea", "YrSold"]
    df = read(usecols=cols).astype(float)
    train, test = df[df.YrSold != 2010].copy(), df[df.YrSold == 2010].copy()
    numeric = [c for c in df.columns if c not in ("Id", "SalePrice")]
    imp = MeanMedianImputer(imputation_method="median", variables=numeric).fit(train)
    train, test = imp.transform(train), imp.transform(test)
    steps = [
        MathFeatures(variables=["1stFlrSF", "2ndFlrSF"], func="sum", new_variables_names=["FlrSF"]),
        RelativeFeatures(variables=["GrLivArea", "GarageArea"], reference=["LotArea"], func=["div", "sub"]),
        EqualWidthDiscretiser(bins=8, variables=["YearBuilt"]),
        EqualFrequencyDiscretiser(q=5, variables=["GrLivArea"]),
        ArbitraryDiscretiser(binning_dict={"OverallQual": [-np.inf, 3, 5, 7, 9, np.inf]}),
    ]
    edges = {}
    for step in steps:
        step.fit(train)
        if hasattr(step, "binner_dict_"):
            edges.update({k: [float(e) for e in v[1:-1]] for k, v in step.binner_dict_.items()})
        train, test = step.transform(train), step.transform(test)
    features = [c for c in train.columns if c not in ("Id", "SalePrice")]
    y = train.SalePrice
    kbest = SelectKBest(f_regression, k=8).fit(train[features], y)
    scores = dict(zip(features, map(float, kbest.scores_)))
    kept = [f for f, keep in zip(features, kbest.get_support()) if keep]
    model = Ridge(alpha=1.0).fit(train[kept].to_numpy(float), np.log(y.to_numpy(float)))
    predict = lambda d: np.exp(model.predict(d[kept].to_numpy(float)))
    return {
        "pipeline": "house-prices-create-select.toml",
        "edges": edges,
        "columns_after_creation": features,
        "f_scores": scores,
        "kept": kept,
        "train_values": {c: [float(v) for v in train[c].to_numpy()[:50]] for c in features},
        "test_metrics": metrics(test.SalePrice, predict(test)),
    }


def mle_lambda(x, kind, start):
    """λ where the log-likelihood's derivative is 0, in 50-digit arithmetic (mpmath), from `start`."""
    import mpmath
    mpmath.mp.dps = 50
    xs = [mpmath.mpf(float(v)) for v in x]
    n = len(xs)

    def slope(lam):
        if kind == "box_cox":
            logs = [mpmath.log(v) for v in xs]
            z = [mpmath.exp(lam * l) for l in logs]
            m = sum(z) / n
            V = sum((zi - m) ** 2 for zi in z)
            C = sum((zi - m) * zi * li for zi, li in zip(z, logs))
            return sum(logs) - n * C / V + n / lam
        psi, dpsi = [], []
        for v in xs:
            if v >= 0:
                b, mu = mpmath.log1p(v), lam
                psi.append(mpmath.expm1(mu * b) / mu)
            else:
                b, mu = mpmath.log1p(-v), 2 - lam
                psi.append(-mpmath.expm1(mu * b) / mu)
            e = mpmath.exp(mu * b)
            dpsi.append((e * b * mu - (e - 1)) / mu ** 2)
        m = sum(psi) / n
        V = sum((p - m) ** 2 for p in psi)
        D = sum((p - m) * d for p, d in zip(psi, dpsi))
        T = sum(mpmath.sign(v) * mpmath.log1p(abs(v)) for v in xs)
        return T - n * D / V

    return float(mpmath.findroot(slope, mpmath.mpf(start), tol=mpmath.mpf(10) ** -40))


def power_case():
    from feature_engine.transformation import BoxCoxTransformer, YeoJohnsonTransformer

    cols = ["Id", "SalePrice", "LotArea", "GrLivArea", "1stFlrSF", "MasVnrArea", "BsmtFinSF1", "OpenPorchSF",
            "OverallQual", "YrSold"]
    df = read(usecols=cols).astype(float)
    train, test = df[df.YrSold != 2010].copy(), df[df.YrSold == 2010].copy()
    numeric = [c for c in df.columns if c not in ("Id", "SalePrice")]
    imp = MeanMedianImputer(imputation_method="median", variables=numeric).fit(train)
    train, test = imp.transform(train), imp.transform(test)
    lambdas = {}
    for kind, transformer in [("box_cox", BoxCoxTransformer(variables=["LotArea", "GrLivArea", "1stFlrSF"])),
                              ("yeo_johnson", YeoJohnsonTransformer(variables=["MasVnrArea", "BsmtFinSF1", "OpenPorchSF"]))]:
        transformer.fit(train)
        for col, lam in transformer.lambda_dict_.items():
            lambdas[col] = {"scipy": float(lam), "exact": mle_lambda(train[col].to_numpy(), kind, float(lam))}
        train, test = transformer.transform(train), transformer.transform(test)
    features = [c for c in train.columns if c not in ("Id", "SalePrice")]
    model = Ridge(alpha=1.0).fit(train[features].to_numpy(float), np.log(train.SalePrice.to_numpy(float)))
    predict = lambda d: np.exp(model.predict(d[features].to_numpy(float)))
    return {
        "pipeline": "house-prices-power.toml",
        "lambdas": lambdas,
        "test_metrics": metrics(test.SalePrice, predict(test)),
    }


def rows_case():
    from feature_engine.imputation import DropMissingData
    from feature_engine.outliers import OutlierTrimmer

    cols = ["Id", "SalePrice", "LotFrontage", "LotArea", "OverallQual", "YearBuilt", "MasVnrArea", "GrLivArea",
            "GarageArea", "YrSold"]
    df = read(usecols=cols).astype(float)
    train, test = df[df.YrSold != 2010].copy(), df[df.YrSold == 2010].copy()
    numeric = [c for c in df.columns if c not in ("Id", "SalePrice")]
    ind = AddMissingIndicator(variables=["LotFrontage"]).fit(train)
    train, test = ind.transform(train), ind.transform(test)
    drop = DropMissingData(variables=["LotFrontage", "MasVnrArea"]).fit(train)
    train = drop.transform(train)  # train rows only; test rows are kept and imputed
    after_drop = len(train)
    # columns = "numeric" selects every numeric feature present at that point, the indicator included.
    numeric = [c for c in train.columns if c not in ("Id", "SalePrice")]
    imp = MeanMedianImputer(imputation_method="median", variables=numeric).fit(train)
    train, test = imp.transform(train), imp.transform(test)
    trim = OutlierTrimmer(capping_method="iqr", tail="both", fold=1.5, variables=["GrLivArea", "LotArea"]).fit(train)
    train = trim.transform(train)
    for col in ["GrLivArea", "LotArea"]:
        test[col] = test[col].clip(trim.left_tail_caps_[col], trim.right_tail_caps_[col])
    features = [c for c in train.columns if c not in ("Id", "SalePrice")]
    model = Ridge(alpha=1.0).fit(train[features].to_numpy(float), np.log(train.SalePrice.to_numpy(float)))
    predict = lambda d: np.exp(model.predict(d[features].to_numpy(float)))
    return {
        "pipeline": "house-prices-rows.toml",
        "train_rows_after_drop": after_drop,
        "train_rows_after_trim": len(train),
        "medians": {k: float(v) for k, v in imp.imputer_dict_.items()},
        "caps": {c: [float(trim.left_tail_caps_[c]), float(trim.right_tail_caps_[c])] for c in ["GrLivArea", "LotArea"]},
        "features": features,
        "test_metrics": metrics(test.SalePrice, predict(test)),
    }


def target_case():
    from sklearn.compose import TransformedTargetRegressor
    from sklearn.preprocessing import PowerTransformer

    cols = ["Id", "SalePrice", "LotArea", "OverallQual", "YearBuilt", "GrLivArea", "GarageArea", "TotalBsmtSF", "YrSold"]
    df = read(usecols=cols).astype(float)
    train, test = df[df.YrSold != 2010].copy(), df[df.YrSold == 2010].copy()
    features = [c for c in df.columns if c not in ("Id", "SalePrice")]
    imp = MeanMedianImputer(imputation_method="median", variables=features).fit(train)
    train, test = imp.transform(train), imp.transform(test)
    model = TransformedTargetRegressor(regressor=Ridge(alpha=1.0),
                                       transformer=PowerTransformer(method="box-cox", standardize=False))
    model.fit(train[features].to_numpy(float), train.SalePrice.to_numpy(float))
    scipy_lambda = float(model.transformer_.lambdas_[0])
    return {
        "pipeline": "house-prices-target.toml",
        "lambda": {"scipy": scipy_lambda, "exact": mle_lambda(train.SalePrice.to_numpy(), "box_cox", scipy_lambda)},
        "test_metrics": metrics(test.SalePrice, model.predict(test[features].to_numpy(float))),
    }


def wrapper_case():
    from sklearn.feature_selection import RFE, SequentialFeatureSelector

    cols = ["Id", "SalePrice", "LotFrontage", "LotArea", "OverallQual", "OverallCond", "YearBuilt", "YearRemodAdd",
            "MasVnrArea", "TotalBsmtSF", "GrLivArea", "FullBath", "TotRmsAbvGrd", "Fireplaces", "GarageCars",
            "GarageArea", "YrSold"]
    df = read(usecols=cols).astype(float)
    train, test = df[df.YrSold != 2010].copy(), df[df.YrSold == 2010].copy()
    features = [c for c in df.columns if c not in ("Id", "SalePrice")]
    imp = MeanMedianImputer(imputation_method="median", variables=features).fit(train)
    train, test = imp.transform(train), imp.transform(test)
    y = train.SalePrice.to_numpy(float)
    rfe = RFE(Ridge(alpha=1.0), n_features_to_select=8, step=1).fit(train[features].to_numpy(float), y)
    after_rfe = [f for f, keep in zip(features, rfe.support_) if keep]
    sfs = SequentialFeatureSelector(Ridge(alpha=1.0), n_features_to_select=4, direction="forward", cv=5, scoring="r2")
    sfs.fit(train[after_rfe].to_numpy(float), y)
    chosen = [f for f, keep in zip(after_rfe, sfs.get_support()) if keep]
    model = Ridge(alpha=1.0).fit(train[chosen].to_numpy(float), np.log(y))
    predict = lambda d: np.exp(model.predict(d[chosen].to_numpy(float)))
    return {
        "pipeline": "house-prices-wrapper.toml",
        "after_rfe": after_rfe,
        "chosen": chosen,
        "test_metrics": metrics(test.SalePrice, predict(test)),
    }


def dates_case():
    """Dates of our own making (seeded), written to tests/peer/data/dates.csv and committed."""
    from feature_engine.datetime import DatetimeFeatures, DatetimeSubtraction

    rng = np.random.Generator(np.random.PCG64(2026))
    n = 400
    listed = pd.Timestamp("1999-11-20") + pd.to_timedelta(rng.integers(0, 9000 * 24 * 60, n), unit="m")
    sold = listed.normalize() + pd.to_timedelta(rng.integers(1, 400, n), unit="D")
    price = 100 + (sold - listed).days.to_numpy() * 0.5 + rng.normal(0, 10, n)
    df = pd.DataFrame({"id": np.arange(1, n + 1), "listed": listed.strftime("%Y-%m-%dT%H:%M:%S"),
                       "sold": sold.strftime("%Y-%m-%d"), "price": np.round(price, 2)})
    (HERE / "data").mkdir(exist_ok=True)
    df.to_csv(HERE / "data" / "dates.csv", index=False)
    data = pd.read_csv(HERE / "data" / "dates.csv", keep_default_na=False, na_values=["NA"])
    train, test = data[data.id <= 300].copy(), data[data.id > 300].copy()
    for d in (train, test):
        d["listed"] = pd.to_datetime(d["listed"])
        d["sold"] = pd.to_datetime(d["sold"])
    from feature_engine.datetime._datetime_constants import FEATURES_SUPPORTED
    sub = DatetimeSubtraction(variables=["sold"], reference=["listed"], output_unit="h").fit(train)
    train, test = sub.transform(train), sub.transform(test)
    feats = DatetimeFeatures(variables=["listed", "sold"], features_to_extract=FEATURES_SUPPORTED).fit(train)
    train, test = feats.transform(train), feats.transform(test)
    features = [c for c in train.columns if c not in ("id", "price")]
    model = Ridge(alpha=1.0).fit(train[features].to_numpy(float), train.price.to_numpy(float))
    return {
        "pipeline": "dates.toml",
        "features": features,
        "train_values": {c: [float(v) for v in train[c].to_numpy()] for c in features},
        "test_metrics": metrics(test.price, model.predict(test[features].to_numpy(float))),
    }


def l1_case():
    from sklearn.feature_selection import SelectFromModel
    from sklearn.linear_model import ElasticNet, Lasso
    from sklearn.preprocessing import StandardScaler

    cols = ["Id", "SalePrice", "LotFrontage", "LotArea", "OverallQual", "OverallCond", "YearBuilt", "YearRemodAdd",
            "MasVnrArea", "BsmtFinSF1", "TotalBsmtSF", "1stFlrSF", "2ndFlrSF", "GrLivArea", "FullBath",
            "TotRmsAbvGrd", "Fireplaces", "GarageCars", "GarageArea", "WoodDeckSF", "OpenPorchSF", "YrSold"]
    df = read(usecols=cols).astype(float)
    train, test = df[df.YrSold != 2010].copy(), df[df.YrSold == 2010].copy()
    features = [c for c in df.columns if c not in ("Id", "SalePrice")]
    imp = MeanMedianImputer(imputation_method="median", variables=features).fit(train)
    train, test = imp.transform(train), imp.transform(test)
    scaler = StandardScaler().fit(train[features])
    train[features], test[features] = scaler.transform(train[features]), scaler.transform(test[features])
    y = train.SalePrice.to_numpy(float)
    sfm = SelectFromModel(Lasso(alpha=3000.0)).fit(train[features].to_numpy(float), y)
    kept = [f for f, k in zip(features, sfm.get_support()) if k]
    X, ly = train[kept].to_numpy(float), np.log(y)

    def objective(model):
        r = ly - X @ model.coef_ - model.intercept_
        return float(r @ r / (2 * len(ly)) + 0.01 * (0.5 * np.abs(model.coef_).sum() + 0.25 * model.coef_ @ model.coef_))

    default = ElasticNet(alpha=0.01, l1_ratio=0.5).fit(X, ly)
    tight = ElasticNet(alpha=0.01, l1_ratio=0.5, tol=1e-14, max_iter=1_000_000).fit(X, ly)
    return {
        "pipeline": "house-prices-l1.toml",
        "kept": kept,
        "coefficients": dict(zip(kept, map(float, default.coef_))),
        "coefficients_tight": dict(zip(kept, map(float, tight.coef_))),
        "objective": objective(default),
        "objective_tight": objective(tight),
        "test_metrics": metrics(test.SalePrice, np.exp(default.predict(test[kept].to_numpy(float)))),
    }


def woe_case():
    from feature_engine.encoding import WoEEncoder

    df = read(usecols=["Id", "Neighborhood", "HouseStyle", "OverallQual", "GrLivArea", "YrSold", "SalePrice"])
    df["Expensive"] = (df.SalePrice > df.SalePrice.median()).astype(int)
    df = df.drop(columns=["SalePrice"])
    (HERE / "data").mkdir(exist_ok=True)
    df.to_csv(HERE / "data" / "houses-binary.csv", index=False)
    train, test = df[df.YrSold != 2010].copy(), df[df.YrSold == 2010].copy()
    cats = ["Neighborhood", "HouseStyle"]
    rare = RareLabelEncoder(tol=0.02, n_categories=1, variables=cats).fit(train)
    train, test = rare.transform(train), rare.transform(test)
    woe = WoEEncoder(variables=cats, fill_value=0.01, unseen="ignore").fit(train, train.Expensive)
    train, test = woe.transform(train), woe.transform(test)
    test = test.fillna({c: 0.0 for c in cats})  # unseen = "zero"
    features = [c for c in train.columns if c not in ("Id", "Expensive")]
    model = Ridge(alpha=1.0).fit(train[features].to_numpy(float), train.Expensive.to_numpy(float))
    return {
        "pipeline": "houses-binary.toml",
        "woe": {k: {str(c): float(v) for c, v in m.items()} for k, m in woe.encoder_dict_.items()},
        "test_metrics": metrics(test.Expensive, model.predict(test[features].to_numpy(float))),
    }


def trees_case():
    """Regression trees and gradient boosting. scikit-learn breaks ties between equally good splits by a
    feature order drawn from random_state; five random_states giving the same predictions shows that no
    tie decides a split here, so mlpipe's rule (column order) must give the same trees."""
    from sklearn.ensemble import GradientBoostingRegressor
    from sklearn.tree import DecisionTreeRegressor

    cols = ["Id", "SalePrice", "LotFrontage", "LotArea", "OverallQual", "YearBuilt", "MasVnrArea",
            "TotalBsmtSF", "GrLivArea", "GarageArea", "YrSold"]
    # Not 1stFlrSF: it often equals TotalBsmtSF, so the two tie in small nodes.
    df = read(usecols=cols).astype(float)
    train, test = df[df.YrSold != 2010].copy(), df[df.YrSold == 2010].copy()
    numeric = [c for c in df.columns if c not in ("Id", "SalePrice")]
    imp = MeanMedianImputer(imputation_method="median", variables=numeric).fit(train)
    train, test = imp.transform(train), imp.transform(test)
    X, Xt, y = train[numeric], test[numeric], train.SalePrice
    makers = {
        "tree": ("house-prices-tree.toml",
                 lambda rs: DecisionTreeRegressor(max_depth=6, min_samples_leaf=10, random_state=rs)),
        "gbr": ("house-prices-gbr.toml",
                lambda rs: GradientBoostingRegressor(n_estimators=100, learning_rate=0.1, max_depth=3,
                                                     min_samples_leaf=5, random_state=rs)),
    }
    out = {}
    for key, (pipeline, make) in makers.items():
        fits = [make(rs).fit(X, y) for rs in range(5)]
        shapes = [[(list(t.tree_.feature), list(t.tree_.threshold)) for t in
                   (f.estimators_[:, 0] if key == "gbr" else [f])] for f in fits]
        assert all(s == shapes[0] for s in shapes[1:]), f"{key}: a tie between splits decides"
        preds = [f.predict(Xt) for f in fits]
        # The same splits; leaf means still differ in the last bits with the order rows are summed in.
        assert all(np.allclose(preds[0], p, rtol=1e-13, atol=0) for p in preds[1:])
        m = fits[0]
        first = m.estimators_[0, 0] if key == "gbr" else m
        t = first.tree_
        out[key] = {
            "pipeline": pipeline,
            "features": numeric,
            "importances": dict(zip(numeric, map(float, m.feature_importances_))),
            "first_tree": {
                "feature": [numeric[f] if f >= 0 else None for f in t.feature],
                "threshold": [float(v) if f >= 0 else None for f, v in zip(t.feature, t.threshold)],
                "value": [float(v) for v in t.value[:, 0, 0]],
                "samples": [int(n) for n in t.n_node_samples],
            },
            "init": float(m.init_.constant_[0, 0]) if key == "gbr" else 0.0,
            "test_predictions": [float(p) for p in preds[0]],
            "test_metrics": metrics(test.SalePrice, preds[0]),
        }
    return out


def main():
    expected = {
        "generated_by": "tests/peer/generate.py",
        "versions": {"python": sys.version.split()[0], "pandas": pd.__version__, "numpy": np.__version__,
                     "scikit-learn": sklearn.__version__, "feature-engine": feature_engine.__version__},
        "ridge": ridge_case(),
        "ols": ols_case(),
        "transform": transform_case(),
        "encode_select": encode_select_case(),
        "create_select": create_select_case(),
        "power": power_case(),
        "rows": rows_case(),
        "target": target_case(),
        "wrapper": wrapper_case(),
        "dates": dates_case(),
        "l1": l1_case(),
        "woe": woe_case(),
        "trees": trees_case(),
    }
    (HERE / "expected.json").write_text(json.dumps(expected, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
