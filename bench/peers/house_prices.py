"""The house-price pipeline of pipelines/house-prices.toml, written the way a scikit-learn /
feature-engine user would: the peer side of bench cases 1 and 4 (same data, same steps, same model).

    python house_prices.py [DATA.csv] [--features-only]

With --features-only it stops after the feature steps (fitted on train, applied to train and test):
the peer side of the feature-pipeline case (`mlpipe run --until encode.onehot`).
"""
import pathlib
import sys

import numpy as np
import pandas as pd
from feature_engine.encoding import RareLabelEncoder
from feature_engine.imputation import AddMissingIndicator, CategoricalImputer, MeanMedianImputer
from sklearn.linear_model import Ridge
from sklearn.metrics import mean_absolute_error, r2_score, root_mean_squared_error
from sklearn.preprocessing import OneHotEncoder

ARGS = [a for a in sys.argv[1:] if a != "--features-only"]
DATA = ARGS[0] if ARGS else pathlib.Path(__file__).resolve().parents[2] / "data-snapshots" / "house-prices" / "train.csv"
QUALITY = ["ExterQual", "ExterCond", "BsmtQual", "BsmtCond", "HeatingQC", "KitchenQual",
           "FireplaceQu", "GarageQual", "GarageCond", "PoolQC"]
SCALE = {v: float(i) for i, v in enumerate(["Missing", "Po", "Fa", "TA", "Gd", "Ex"])}

df = pd.read_csv(DATA, keep_default_na=False, na_values=["NA"], dtype={"MSSubClass": str})
numeric = [c for c in df.columns if c not in ("Id", "SalePrice") and pd.api.types.is_numeric_dtype(df[c])]
categorical = [c for c in df.columns if c not in ("Id", "SalePrice") and c not in numeric]
# As pipelines/house-prices.toml: train on 2006-2009, test on 2010.
train, test = df[df.YrSold < 2010].copy(), df[df.YrSold >= 2010].copy()
ind = AddMissingIndicator(variables=numeric).fit(train)
train, test = ind.transform(train), ind.transform(test)
med = MeanMedianImputer(imputation_method="median", variables=numeric).fit(train)
train, test = med.transform(train), med.transform(test)
cat = CategoricalImputer(fill_value="Missing", variables=categorical).fit(train)
train, test = cat.transform(train), cat.transform(test)
for d in (train, test):
    for c in QUALITY:
        d[c] = d[c].map(SCALE)
rest = [c for c in categorical if c not in QUALITY]
rare = RareLabelEncoder(tol=0.01, n_categories=1, variables=rest).fit(train)
train, test = rare.transform(train), rare.transform(test)
enc = OneHotEncoder(handle_unknown="ignore", sparse_output=False).fit(train[rest])
names = enc.get_feature_names_out(rest)
train = pd.concat([train.drop(columns=rest), pd.DataFrame(enc.transform(train[rest]), columns=names, index=train.index)], axis=1)
test = pd.concat([test.drop(columns=rest), pd.DataFrame(enc.transform(test[rest]), columns=names, index=test.index)], axis=1)
features = [c for c in train.columns if c not in ("Id", "SalePrice")]
if "--features-only" in sys.argv:
    print({"train": train.shape, "test": test.shape})
    sys.exit(0)
model = Ridge(alpha=10.0).fit(train[features], np.log(train.SalePrice))
pred = np.exp(model.predict(test[features]))
print({"rmse": root_mean_squared_error(test.SalePrice, pred), "mae": mean_absolute_error(test.SalePrice, pred),
       "r2": r2_score(test.SalePrice, pred)})
