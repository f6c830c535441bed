"""Runs the peers (pandas, feature-engine, scikit-learn) on the same data and steps as
tests/peer/*.toml and writes tests/peer/expected.json, which tests/peer.rs compares against.

    pip install pandas==3.1.1 scikit-learn==1.9.1 feature-engine==1.9.4 numpy==2.4.6 mpmath==1.4.1
    python3 tests/peer/generate.py
"""
import json
import warnings
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


def house_steps(train, test, numeric, categorical):
    """The steps of tests/peer/house-prices-ridge.toml, fitted on `train`, applied to both."""
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
    return train, test, {"indicator": indicator, "medians": medians, "frequent": frequent, "dummies": dummies}


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

    train, test, fitted = house_steps(train, test, numeric, categorical)
    indicator, medians, frequent, dummies = (fitted[k] for k in ("indicator", "medians", "frequent", "dummies"))
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
    # Forests. Without bootstrap or feature draws every tree is the decision tree; with them, the streams
    # are not numpy's, so scikit-learn's spread of scores over ten random_states is the yardstick.
    from sklearn.ensemble import RandomForestRegressor

    plain = [RandomForestRegressor(n_estimators=2, bootstrap=False, max_features=1.0, max_depth=6,
                                   min_samples_leaf=10, random_state=rs).fit(X, y).predict(Xt) for rs in range(5)]
    assert all(np.allclose(plain[0], p, rtol=1e-13, atol=0) for p in plain[1:])
    out["forest_unsampled"] = {
        "train": 'estimator = "random_forest"\nn_estimators = 2\nbootstrap = false\nmax_depth = 6\nmin_samples_leaf = 10',
        "test_predictions": [float(p) for p in plain[0]],
        "test_metrics": metrics(test.SalePrice, plain[0]),
    }
    scores = [metrics(test.SalePrice, RandomForestRegressor(n_estimators=200, max_features=0.5, random_state=rs)
                      .fit(X, y).predict(Xt)) for rs in range(10)]
    out["forest"] = {
        "train": 'estimator = "random_forest"\nn_estimators = 200\nmax_features = 0.5',
        "range": {k: [min(s[k] for s in scores), max(s[k] for s in scores)] for k in ("rmse", "mae", "r2")},
    }
    return out


PENGUINS = HERE.parent.parent / "data-snapshots" / "penguins" / "penguins.csv"


def penguins_design():
    """tests/peer/penguins-classify.toml by hand: 2007-2008 train, 2009 test; medians, most frequent
    category, one-hot without the first category, standard scaling."""
    from feature_engine.imputation import CategoricalImputer

    df = pd.read_csv(PENGUINS, keep_default_na=False, na_values=["NA"])
    train, test = df[df.year < 2009].copy(), df[df.year >= 2009].copy()
    numeric = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g", "year"]
    cats = ["island", "sex"]
    imp = MeanMedianImputer(imputation_method="median", variables=numeric).fit(train)
    train, test = imp.transform(train), imp.transform(test)
    cat = CategoricalImputer(imputation_method="frequent", variables=cats).fit(train)
    train, test = cat.transform(train), cat.transform(test)
    train, test, _ = one_hot(train, test, cats, drop="first")
    return scaled(train, test, numeric, "species")


def houses_design():
    """tests/peer/houses-classify.toml by hand: rare labels, one-hot without the first category,
    standard scaling; 2010 is the test year."""
    df = pd.read_csv(HERE / "data" / "houses-binary.csv", keep_default_na=False, na_values=["NA"])
    train, test = df[df.YrSold != 2010].copy(), df[df.YrSold == 2010].copy()
    cats = ["Neighborhood", "HouseStyle"]
    rare = RareLabelEncoder(tol=0.02, n_categories=1, variables=cats).fit(train)
    train, test = rare.transform(train), rare.transform(test)
    train, test, _ = one_hot(train, test, cats, drop="first")
    train, test = train.drop(columns=["Id"]), test.drop(columns=["Id"])
    return scaled(train, test, ["OverallQual", "GrLivArea", "YrSold"], "Expensive")


def scaled(train, test, columns, target):
    from sklearn.preprocessing import StandardScaler

    sc = StandardScaler().fit(train[columns])
    train[columns], test[columns] = sc.transform(train[columns]), sc.transform(test[columns])
    features = [c for c in train.columns if c != target]
    return train[features], test[features], train[target], test[target]


def logistic_objective(X, y, classes, coef, intercept, C, l1_ratio):
    """Σ log-loss + (1/C)·((1 − l1_ratio)/2·‖W‖² + l1_ratio·‖W‖₁), in extended precision."""
    X = np.asarray(X, dtype=np.longdouble)
    W = np.asarray(coef, dtype=np.longdouble)
    b = np.asarray(intercept, dtype=np.longdouble)
    Z = X @ W.T + b
    if W.shape[0] == 1:
        z = Z[:, 0]
        t = (np.asarray(y) == classes[1]).astype(np.longdouble)
        loss = np.sum(np.logaddexp(0, z) - t * z)
    else:
        m = Z.max(axis=1, keepdims=True)
        lse = (m[:, 0] + np.log(np.exp(Z - m).sum(axis=1)))
        idx = np.searchsorted(classes, np.asarray(y))
        loss = np.sum(lse - Z[np.arange(len(idx)), idx])
    pen = (1 - l1_ratio) / 2 * np.sum(W * W) + l1_ratio * np.sum(np.abs(W))
    return float(loss + pen / np.longdouble(C))


def class_metrics(y, proba, classes):
    from sklearn.metrics import (accuracy_score, balanced_accuracy_score, f1_score, log_loss,
                                 precision_score, recall_score, roc_auc_score)

    pred = np.asarray(classes)[np.argmax(proba, axis=1)]
    out = {"accuracy": accuracy_score(y, pred), "balanced_accuracy": balanced_accuracy_score(y, pred),
           "log_loss": log_loss(y, proba, labels=classes)}
    for avg in ("macro", "weighted"):
        out[f"precision_{avg}"] = precision_score(y, pred, average=avg, zero_division=0)
        out[f"recall_{avg}"] = recall_score(y, pred, average=avg, zero_division=0)
        out[f"f1_{avg}"] = f1_score(y, pred, average=avg, zero_division=0)
    if len(classes) == 2:
        out["precision"] = precision_score(y, pred, pos_label=classes[1], zero_division=0)
        out["recall"] = recall_score(y, pred, pos_label=classes[1], zero_division=0)
        out["f1"] = f1_score(y, pred, pos_label=classes[1], zero_division=0)
        out["roc_auc"] = roc_auc_score(y == classes[1], proba[:, 1])
    else:
        out["roc_auc_ovr"] = roc_auc_score(y, proba, multi_class="ovr", average="macro", labels=classes)
        out["roc_auc_ovr_weighted"] = roc_auc_score(y, proba, multi_class="ovr", average="weighted",
                                                    labels=classes)
    return {k: float(v) for k, v in out.items()}


def tied_splits(trees, X):
    """Splits another feature would make exactly as well: the same rows to each side. Their sums differ
    only in rounding, so which feature wins is an accident of summation order, in scikit-learn and in
    mlpipe alike; a case with such a split cannot be compared tree for tree."""
    X = np.asarray(X, dtype=float)
    found = []
    for i, tree in enumerate(trees):
        t = tree.tree_
        paths = tree.decision_path(X).tocsc()
        for node in np.nonzero(t.feature >= 0)[0]:
            rows = paths[:, node].nonzero()[0]
            left = X[rows, t.feature[node]] <= t.threshold[node]
            for g in range(X.shape[1]):
                if g == t.feature[node]:
                    continue
                a, b = X[rows[left], g], X[rows[~left], g]
                if a.max() < b.min() or b.max() < a.min():
                    found.append((i, int(node), int(t.feature[node]), g))
    return found


def classify_case():
    """Classifiers on three classes (penguins) and two (houses). Each case names the [train] table the
    test swaps into the dataset's pipeline. Logistic regressions are fitted to tight tolerances and
    judged by objective value; trees are fitted with five random_states that must agree (no tie decides
    a split); a bootstrapped forest cannot be scikit-learn's tree for tree (other random streams), so
    the spread of scikit-learn's scores over ten random_states is recorded instead."""
    from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.tree import DecisionTreeClassifier

    designs = {"penguins": ("penguins-classify.toml", penguins_design()),
               "houses": ("houses-classify.toml", houses_design())}
    cases = [
        ("penguins", "logistic_l2", 'estimator = "logistic_regression"\nC = 0.5\ntol = 1e-10',
         lambda rs: LogisticRegression(C=0.5, tol=1e-12, max_iter=100000), (0.5, 0.0)),
        ("penguins", "logistic_l1", 'estimator = "logistic_regression"\nC = 0.5\nl1_ratio = 1.0\ntol = 1e-10',
         lambda rs: LogisticRegression(C=0.5, l1_ratio=1.0, solver="saga", tol=1e-13, max_iter=1000000,
                                      random_state=0),
         (0.5, 1.0)),
        ("houses", "logistic_l2", 'estimator = "logistic_regression"\nC = 1.0\ntol = 1e-10',
         lambda rs: LogisticRegression(C=1.0, tol=1e-12, max_iter=100000), (1.0, 0.0)),
        ("houses", "logistic_enet", 'estimator = "logistic_regression"\nC = 0.2\nl1_ratio = 0.5\ntol = 1e-10',
         lambda rs: LogisticRegression(C=0.2, l1_ratio=0.5, solver="saga", tol=1e-13, max_iter=1000000,
                                      random_state=0),
         (0.2, 0.5)),
        ("penguins", "tree_entropy",
         'estimator = "decision_tree"\ncriterion = "entropy"\nmax_depth = 5\nmin_samples_leaf = 5',
         lambda rs: DecisionTreeClassifier(criterion="entropy", max_depth=5, min_samples_leaf=5,
                                           random_state=rs), None),
        ("houses", "tree_gini", 'estimator = "decision_tree"\nmax_depth = 4',
         lambda rs: DecisionTreeClassifier(max_depth=4, random_state=rs), None),
        ("houses", "forest_unsampled",
         'estimator = "random_forest"\nn_estimators = 3\nbootstrap = false\nmax_features = "all"\nmax_depth = 4',
         lambda rs: RandomForestClassifier(n_estimators=3, bootstrap=False, max_features=None, max_depth=4,
                                           random_state=rs), None),
        ("penguins", "gradient_boosting",
         'estimator = "gradient_boosting"\nn_estimators = 30\nmax_depth = 2\nmin_samples_leaf = 5',
         lambda rs: GradientBoostingClassifier(n_estimators=30, max_depth=2, min_samples_leaf=5,
                                               random_state=rs), None),
        ("houses", "gradient_boosting",
         'estimator = "gradient_boosting"\nn_estimators = 50\nmax_depth = 3\nmin_samples_leaf = 5',
         lambda rs: GradientBoostingClassifier(n_estimators=50, max_depth=3, min_samples_leaf=5,
                                               random_state=rs), None),
    ]
    out = {}
    for data, name, train_toml, make, penalty in cases:
        pipeline, (X, Xt, y, yt) = designs[data]
        key = f"{data}_{name}"
        fits = [make(rs).fit(X, y) for rs in range(5 if penalty is None else 1)]
        probas = [f.predict_proba(Xt) for f in fits]
        assert all(np.allclose(probas[0], p, rtol=1e-12, atol=1e-15) for p in probas[1:]), \
            f"{key}: a tie between splits decides"
        m = fits[0]
        if penalty is None:
            trees = np.ravel(m.estimators_) if hasattr(m, "estimators_") else [m]
            ties = tied_splits(list(trees), X)
            assert not ties, f"{key}: splits tie (tree, node, feature, other feature): {ties[:5]}"
        classes = [str(c) for c in m.classes_]
        case = {"pipeline": pipeline, "train": train_toml, "features": list(X.columns), "classes": classes,
                "test_proba": probas[0].tolist(), "test_metrics": class_metrics(yt, probas[0], list(m.classes_))}
        if penalty is not None:
            C, l1_ratio = penalty
            case["objective"] = logistic_objective(X.to_numpy(float), y, m.classes_, m.coef_, m.intercept_, C,
                                                   l1_ratio)
            case["coefficients"] = [[float(v) for v in row] for row in m.coef_]
            case["intercepts"] = [float(v) for v in m.intercept_]
            case["penalty"] = {"C": C, "l1_ratio": l1_ratio}
        else:
            case["importances"] = dict(zip(X.columns, map(float, m.feature_importances_)))
        out[key] = case
    # A bootstrapped forest: scikit-learn's scores over ten random_states.
    pipeline, (X, Xt, y, yt) = designs["houses"]
    scores = [class_metrics(yt, RandomForestClassifier(n_estimators=200, random_state=rs).fit(X, y)
                            .predict_proba(Xt), [0, 1]) for rs in range(10)]
    out["houses_forest"] = {
        "pipeline": pipeline, "train": 'estimator = "random_forest"\nn_estimators = 200',
        "range": {k: [min(s[k] for s in scores), max(s[k] for s in scores)] for k in ("accuracy", "roc_auc", "log_loss")},
    }
    return out


def cv_case():
    """tests/peer/house-prices-ridge.toml with a grid over alpha, scored by unshuffled 5-fold
    cross-validation of the whole pipeline (every step refitted on each fold's other folds), RMSE on the
    original scale: scikit-learn's KFold, feature-engine's steps, Ridge on log(SalePrice)."""
    from sklearn.model_selection import KFold

    df = read(dtype={"MSSubClass": str})
    train = df[df.YrSold != 2010].reset_index(drop=True)
    protected = ["Id", "SalePrice"]
    numeric = [c for c in train.columns if c not in protected and pd.api.types.is_numeric_dtype(train[c])]
    categorical = [c for c in train.columns if c not in protected and c not in numeric]
    alphas = [1.0, 10.0, 30.0]
    scores = {a: [] for a in alphas}
    for fit_rows, held in KFold(5).split(train):
        a, b, _ = house_steps(train.iloc[fit_rows].copy(), train.iloc[held].copy(), numeric, categorical)
        features = [c for c in a.columns if c not in protected]
        for alpha in alphas:
            model = Ridge(alpha=alpha).fit(a[features].to_numpy(float), np.log(a.SalePrice.to_numpy(float)))
            pred = np.exp(model.predict(b[features].to_numpy(float)))
            scores[alpha].append(float(root_mean_squared_error(b.SalePrice, pred)))
    means = {a: float(np.mean(v)) for a, v in scores.items()}
    return {
        "pipeline": "house-prices-ridge.toml",
        "extra": "[grid]\nalpha = [1.0, 10.0, 30.0]\n\n[cv]\nfolds = 5\nshuffle = false\nmetric = \"rmse\"\n",
        "candidates": [{"alpha": a, "scores": scores[a], "mean": means[a], "std": float(np.std(scores[a]))}
                       for a in alphas],
        "chosen_alpha": min(alphas, key=lambda a: means[a]),
    }


def ensemble_case():
    """Stacking and voting: scikit-learn's StackingRegressor / StackingClassifier (default cv: unshuffled
    KFold, StratifiedKFold for classes; final estimator on out-of-fold predictions; probabilities of
    the positive class for two classes) and VotingRegressor / VotingClassifier(voting="soft")."""
    from sklearn.ensemble import (GradientBoostingRegressor, StackingClassifier, StackingRegressor,
                                  VotingClassifier, VotingRegressor)
    from sklearn.linear_model import LogisticRegression
    from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

    cols = ["Id", "SalePrice", "LotFrontage", "LotArea", "OverallQual", "YearBuilt", "MasVnrArea",
            "TotalBsmtSF", "GrLivArea", "GarageArea", "YrSold"]
    df = read(usecols=cols).astype(float)
    train, test = df[df.YrSold != 2010].copy(), df[df.YrSold == 2010].copy()
    numeric = [c for c in df.columns if c not in ("Id", "SalePrice")]
    imp = MeanMedianImputer(imputation_method="median", variables=numeric).fit(train)
    train, test = imp.transform(train), imp.transform(test)
    houses = (train[numeric], test[numeric], train.SalePrice, test.SalePrice)
    base_toml = ('[[train.base]]\nname = "ridge"\nestimator = "ridge"\nalpha = 10.0\n\n'
                 '[[train.base]]\nname = "tree"\nestimator = "decision_tree"\nmax_depth = 6\nmin_samples_leaf = 10\n')
    bases = lambda: [("ridge", Ridge(alpha=10.0)),
                     ("tree", DecisionTreeRegressor(max_depth=6, min_samples_leaf=10, random_state=0))]
    class_toml = ('[[train.base]]\nname = "logistic"\nestimator = "logistic_regression"\nC = 0.5\ntol = 1e-10\n\n'
                  '[[train.base]]\nname = "tree"\nestimator = "decision_tree"\ncriterion = "entropy"\n'
                  'max_depth = 5\nmin_samples_leaf = 5\n')
    class_bases = lambda: [("logistic", LogisticRegression(C=0.5, tol=1e-12, max_iter=100000)),
                           ("tree", DecisionTreeClassifier(criterion="entropy", max_depth=5, min_samples_leaf=5,
                                                           random_state=0))]
    cases = {
        "stacking_regressor": ("house-prices-tree.toml", houses,
                               'estimator = "stacking"\n\n[train.final]\nestimator = "ridge"\nalpha = 1.0\n\n' + base_toml,
                               lambda: StackingRegressor(bases(), final_estimator=Ridge(alpha=1.0))),
        "voting_regressor": ("house-prices-tree.toml", houses,
                             'estimator = "voting"\nweights = [1, 3]\n\n' + base_toml,
                             lambda: VotingRegressor(bases(), weights=[1, 3])),
        "stacking_classifier": ("penguins-classify.toml", penguins_design(),
                                'estimator = "stacking"\n\n[train.final]\nestimator = "logistic_regression"\ntol = 1e-10\n\n'
                                + class_toml,
                                lambda: StackingClassifier(class_bases(),
                                                           final_estimator=LogisticRegression(tol=1e-12, max_iter=100000))),
        "voting_classifier": ("penguins-classify.toml", penguins_design(),
                              'estimator = "voting"\nweights = [2, 1]\n\n' + class_toml,
                              lambda: VotingClassifier(class_bases(), voting="soft", weights=[2, 1])),
    }
    out = {}
    for key, (pipeline, (X, Xt, y, yt), train_toml, make) in cases.items():
        m = make().fit(X, y)
        if hasattr(m, "predict_proba"):
            pred = m.predict_proba(Xt)
            result = {"test_proba": pred.tolist(), "test_metrics": class_metrics(yt, pred, list(m.classes_))}
        else:
            pred = m.predict(Xt)
            result = {"test_predictions": [float(v) for v in pred], "test_metrics": metrics(yt, pred)}
        out[key] = {"pipeline": pipeline, "train": train_toml, **result}
    return out


def kmeans_case():
    """k-means on the penguins design (tests/peer/penguins-classify.toml's steps, species left out). From
    a given start (the first three train rows) Lloyd's iterations are deterministic and must agree;
    seeded by k-means++ they draw from other streams, so scikit-learn's spread over ten random_states
    is the yardstick."""
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score

    X, Xt, _, _ = penguins_design()
    start = X.to_numpy(float)[:3]
    m = KMeans(n_clusters=3, init=start, n_init=1, tol=1e-4, max_iter=300).fit(X.to_numpy(float))
    fits = [KMeans(n_clusters=3, n_init=10, random_state=rs).fit(X.to_numpy(float)) for rs in range(10)]
    test_silhouette = [float(silhouette_score(Xt.to_numpy(float), f.predict(Xt.to_numpy(float)))) for f in fits]
    return {
        "pipeline": "penguins-classify.toml",
        "train": 'estimator = "k_means"\nn_clusters = 3\nn_init = 10',
        "features": list(X.columns),
        "lloyd": {"centres": m.cluster_centers_.tolist(), "inertia": float(m.inertia_), "iterations": int(m.n_iter_),
                  "labels": [int(v) for v in m.labels_]},
        "inertia_range": [min(float(f.inertia_) for f in fits), max(float(f.inertia_) for f in fits)],
        "test_silhouette_range": [min(test_silhouette), max(test_silhouette)],
    }


def embedded_case():
    """Embedded selection with the classification and tree estimators: scikit-learn's SelectFromModel
    with an L1 logistic regression (default threshold 1e-5, as l1_ratio = 1), a regression tree's top
    four importances (max_features = 4, threshold = 0) and a boosted classifier above its mean
    importance. Each case is a [[select]] step the test puts before [train]."""
    from sklearn.ensemble import GradientBoostingClassifier
    from sklearn.feature_selection import SelectFromModel
    from sklearn.linear_model import LogisticRegression
    from sklearn.tree import DecisionTreeRegressor

    cols = ["Id", "SalePrice", "LotFrontage", "LotArea", "OverallQual", "YearBuilt", "MasVnrArea",
            "TotalBsmtSF", "GrLivArea", "GarageArea", "YrSold"]
    df = read(usecols=cols).astype(float)
    train = df[df.YrSold != 2010].copy()
    numeric = [c for c in df.columns if c not in ("Id", "SalePrice")]
    imp = MeanMedianImputer(imputation_method="median", variables=numeric).fit(train)
    train = imp.transform(train)
    houses_binary = houses_design()
    penguins = penguins_design()
    cases = {
        "logistic_l1": ("houses-classify.toml", houses_binary[0], houses_binary[2],
                        'operator = "select_from_model"\ncolumns = "numeric"\nestimator = "logistic_regression"\nC = 0.05\nl1_ratio = 1.0\ntol = 1e-10',
                        SelectFromModel(LogisticRegression(C=0.05, l1_ratio=1.0, solver="saga", tol=1e-13,
                                                           max_iter=1000000, random_state=0))),
        "tree_top_k": ("house-prices-tree.toml", train[numeric], train.SalePrice,
                       'operator = "select_from_model"\ncolumns = "numeric"\nestimator = "decision_tree"\nmax_depth = 6\nmin_samples_leaf = 10\nmax_features = 4\nthreshold = 0.0',
                       SelectFromModel(DecisionTreeRegressor(max_depth=6, min_samples_leaf=10, random_state=0),
                                       max_features=4, threshold=0.0)),
        "boosting_mean": ("penguins-classify.toml", penguins[0], penguins[2],
                          'operator = "select_from_model"\ncolumns = "numeric"\nestimator = "gradient_boosting"\nn_estimators = 30\nmax_depth = 2\nmin_samples_leaf = 5',
                          SelectFromModel(GradientBoostingClassifier(n_estimators=30, max_depth=2, min_samples_leaf=5,
                                                                     random_state=0))),
    }
    from sklearn.feature_selection import SelectKBest, SelectPercentile, f_classif

    cases["f_classif_k"] = ("penguins-classify.toml", penguins[0], penguins[2],
                            'operator = "select_k_best"\ncolumns = "numeric"\nk = 4', SelectKBest(f_classif, k=4))
    cases["f_classif_percentile"] = ("houses-classify.toml", houses_binary[0], houses_binary[2],
                                     'operator = "select_k_best"\ncolumns = "numeric"\npercentile = 25',
                                     SelectPercentile(f_classif, percentile=25))
    out = {}
    for key, (pipeline, X, y, step, selector) in cases.items():
        selector.fit(X, y)
        out[key] = {"pipeline": pipeline, "step": step, "features": list(X.columns),
                    "kept": [str(c) for c in selector.get_feature_names_out()]}
    return out


def mutual_info_case():
    """select_k_best with score = "mutual_info": scikit-learn's mutual_info_regression /
    mutual_info_classif under SelectKBest / SelectPercentile. The estimate adds seeded noise to
    continuous values, so mlpipe (its own stream) cannot draw scikit-learn's: each case records the
    scores for 30 random_states. Discrete-only cases are exact; the others are compared with the
    spread of scikit-learn's own estimates; the kept columns must include those every state keeps
    and be among those some state keeps."""
    from sklearn.feature_selection import SelectKBest, SelectPercentile, mutual_info_classif, mutual_info_regression

    cols = ["Id", "SalePrice", "LotFrontage", "LotArea", "OverallQual", "YearBuilt", "MasVnrArea",
            "TotalBsmtSF", "GrLivArea", "GarageArea", "YrSold"]
    df = read(usecols=cols).astype(float)
    train = df[df.YrSold != 2010].copy()
    numeric = [c for c in df.columns if c not in ("Id", "SalePrice")]
    train = MeanMedianImputer(imputation_method="median", variables=numeric).fit(train).transform(train)
    penguins = penguins_design()
    dummies = [c for c in penguins[0].columns if c.startswith(("island_", "sex_"))]
    cases = {
        "regression_k": ("house-prices-tree.toml", train[numeric], train.SalePrice, "k = 4", False,
                         mutual_info_regression, lambda f: SelectKBest(f, k=4)),
        "regression_discrete": ("house-prices-tree.toml", train[numeric], train.SalePrice,
                                'k = 3\ndiscrete_features = ["OverallQual", "YrSold"]',
                                [numeric.index("OverallQual"), numeric.index("YrSold")],
                                mutual_info_regression, lambda f: SelectKBest(f, k=3)),
        "classif_percentile": ("penguins-classify.toml", penguins[0], penguins[2],
                               "percentile = 50\ndiscrete_features = [" + ", ".join(f'"{d}"' for d in dummies) + "]",
                               [list(penguins[0].columns).index(d) for d in dummies],
                               mutual_info_classif, lambda f: SelectPercentile(f, percentile=50)),
        "classif_discrete": ("penguins-classify.toml", penguins[0], penguins[2],
                             "k = 3\ndiscrete_features = true", True,
                             mutual_info_classif, lambda f: SelectKBest(f, k=3)),
    }
    out = {}
    for key, (pipeline, X, y, params, discrete, score, selector) in cases.items():
        scores, kept = [], []
        warnings.simplefilter("ignore")  # mutual_info_score warns that float labels look continuous
        for state in range(30):
            f = lambda X, y, state=state: score(X, y, discrete_features=discrete, random_state=state)
            sel = selector(f).fit(X, y)
            scores.append([float(v) for v in sel.scores_])
            kept.append([str(c) for c in sel.get_feature_names_out()])
        out[key] = {"pipeline": pipeline, "features": list(X.columns), "scores": scores,
                    "kept_always": [c for c in X.columns if all(c in k for k in kept)],
                    "kept_ever": [c for c in X.columns if any(c in k for k in kept)],
                    "step": 'operator = "select_k_best"\ncolumns = "numeric"\nscore = "mutual_info"\n' + params}
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
        "classify": classify_case(),
        "cv": cv_case(),
        "ensemble": ensemble_case(),
        "kmeans": kmeans_case(),
        "embedded": embedded_case(),
        "mutual_info": mutual_info_case(),
    }
    (HERE / "expected.json").write_text(json.dumps(expected, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
