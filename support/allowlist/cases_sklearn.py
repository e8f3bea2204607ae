"""scikit-learn files: every estimator sklearn lists, fitted on tiny synthetic data and pickled.

Each estimator from ``sklearn.utils.all_estimators()`` is built (with the parameter sets sklearn's
own test-suite uses, when that private helper exists), fitted on the first synthetic data set its
tags accept, and written with ``pickle`` (protocols 2 and 5) and ``joblib.dump``. Estimators that
cannot be fitted here are reported and skipped. A second list adds parameter variants that put
other internals into the pickle (losses, distance metrics, kernels, tree types, scorers, CV
splitters, column selectors ...).
"""

from __future__ import annotations

import os
import pickle
import warnings

import joblib
import numpy as np
import sklearn
from sklearn.base import clone, is_classifier, is_regressor

from common import Case

SKLEARN = f"scikit-learn {sklearn.__version__}"

SKIPPED: list[tuple[str, str]] = []  # (estimator, why) for the report


def _data():
    rng = np.random.RandomState(0)
    X = rng.rand(60, 4) + 0.1
    yc = np.arange(60) % 3
    yb = np.arange(60) % 2
    yr = rng.rand(60) + 0.5
    ym = np.c_[yc, (np.arange(60) // 3) % 2]
    texts = ["the cat sat", "a dog ran", "the dog sat", "cats and dogs", "a cat ran fast", "dogs sat"] * 10
    dicts = [{"a": 1.0, "b": "x"}, {"a": 2.0, "c": 3.0}] * 30
    return X, yc, yb, yr, ym, texts, dicts


def _instances(Estimator):
    try:
        from sklearn.utils._test_common.instance_generator import _construct_instances

        return list(_construct_instances(Estimator))
    except Exception:
        return [Estimator()]


def _seed(est):
    """Fix every random_state (also of nested estimators) so that runs are reproducible."""
    try:
        params = est.get_params(deep=True)
    except Exception:
        return est
    seeds = {k: 0 for k, v in params.items() if k.endswith("random_state") and not hasattr(v, "randint")}
    if seeds:
        try:
            est.set_params(**seeds)
        except Exception:
            pass
    return est


def _fit(est):
    from sklearn.utils import get_tags

    X, yc, yb, yr, ym, texts, dicts = _data()
    tags = get_tags(est)
    attempts = []
    if tags.input_tags.string:
        attempts.append((texts, yc))
    if tags.input_tags.dict:
        attempts.append((dicts, yc))
    if tags.input_tags.pairwise:
        attempts.append((X @ X.T, yb))
    if is_classifier(est):
        attempts += [(X, yc), (X, yb), (X, ym)]
    elif is_regressor(est):
        attempts += [(X, yr), (X, ym)]
    attempts += [(X, yc), (X, None), (yc, None), ([[0, 1], [1], [2]] * 20, None), (X[:, 0], yr),
                 (X @ X.T, None), (texts, yc), (dicts, None)]
    err = None
    for Xa, ya in attempts:
        e = _seed(clone(est))
        np.random.seed(0)
        try:
            e.fit(Xa) if ya is None else e.fit(Xa, ya)
            return e
        except Exception as ex:  # try the next data shape
            err = ex
    raise RuntimeError(f"{type(err).__name__}: {err}")


def _variants():
    """Parameter variants that store other sklearn internals."""
    from sklearn import (
        compose, ensemble, feature_selection, gaussian_process, impute, kernel_approximation, linear_model,
        model_selection, neighbors, neural_network, pipeline, preprocessing, svm, tree,
    )
    from sklearn.gaussian_process import kernels as K
    from sklearn.metrics import DistanceMetric

    X, yc, yb, yr, ym, texts, dicts = _data()
    v = []
    for loss in ("hinge", "log_loss", "modified_huber", "squared_hinge", "perceptron", "squared_error", "huber",
                 "epsilon_insensitive", "squared_epsilon_insensitive"):
        v.append((f"SGDClassifier-{loss}", linear_model.SGDClassifier(loss=loss, max_iter=5), X, yc))
    for loss in ("squared_error", "huber", "epsilon_insensitive", "squared_epsilon_insensitive"):
        v.append((f"SGDRegressor-{loss}", linear_model.SGDRegressor(loss=loss, max_iter=5), X, yr))
    for loss in ("squared_error", "absolute_error", "gamma", "poisson", "quantile"):
        extra = {"quantile": 0.5} if loss == "quantile" else {}
        v.append((f"HGBR-{loss}", ensemble.HistGradientBoostingRegressor(loss=loss, max_iter=3, **extra), X, yr))
    v.append(("HGBC-binary", ensemble.HistGradientBoostingClassifier(max_iter=3), X, yb))
    v.append(("HGBC-categorical", ensemble.HistGradientBoostingClassifier(max_iter=3, categorical_features=[0]),
              np.c_[np.arange(60) % 4, X[:, 1:]], yc))
    for loss in ("squared_error", "absolute_error", "huber", "quantile"):
        v.append((f"GBR-{loss}", ensemble.GradientBoostingRegressor(loss=loss, n_estimators=3), X, yr))
    for loss in ("log_loss", "exponential"):
        v.append((f"GBC-{loss}", ensemble.GradientBoostingClassifier(loss=loss, n_estimators=3), X, yb))
    for power, link in ((0, "identity"), (1, "log"), (1.5, "log"), (2, "log"), (3, "log"), (0, "log")):
        v.append((f"Tweedie-{power}-{link}", linear_model.TweedieRegressor(power=power, link=link), X, yr))
    v.append(("LogisticRegression-binary", linear_model.LogisticRegression(), X, yb))
    for algo in ("kd_tree", "ball_tree", "brute"):
        for metric in ("euclidean", "manhattan", "chebyshev", "minkowski"):
            v.append((f"KNN-{algo}-{metric}", neighbors.KNeighborsClassifier(3, algorithm=algo, metric=metric), X, yc))
    for metric in ("haversine", "hamming", "canberra", "braycurtis", "seuclidean", "mahalanobis", "wminkowski"):
        params = {}
        if metric == "seuclidean":
            params = {"V": np.ones(4)}
        if metric == "mahalanobis":
            params = {"VI": np.eye(4)}
        if metric == "wminkowski":
            metric, params = "minkowski", {"p": 3, "w": np.ones(4)}
        Xm = X[:, :2] if metric == "haversine" else X
        v.append((f"BallTree-{metric}", neighbors.NearestNeighbors(algorithm="ball_tree", metric=metric,
                                                                     metric_params=params or None), Xm, None))
    v.append(("KDTree", neighbors.KDTree(X), None, None))
    v.append(("BallTree", neighbors.BallTree(X), None, None))
    v.append(("KDTree-32", neighbors.KDTree(X.astype(np.float32)), None, None))
    v.append(("DistanceMetric64", DistanceMetric.get_metric("manhattan"), None, None))
    v.append(("DistanceMetric32", DistanceMetric.get_metric("euclidean", dtype=np.float32), None, None))
    v.append(("KernelDensity", neighbors.KernelDensity(kernel="epanechnikov"), X, None))
    v.append(("KNN-float32", neighbors.KNeighborsRegressor(3), X.astype(np.float32), yr))
    kernels = {
        "rbf": K.RBF(), "matern": K.Matern(nu=2.5), "rq": K.RationalQuadratic(), "expsine": K.ExpSineSquared(periodicity=3.0) + K.WhiteKernel(),
        "dot": K.DotProduct(), "white": K.WhiteKernel(), "sum": K.ConstantKernel() * K.RBF() + K.WhiteKernel(),
        "exp": K.Exponentiation(K.RBF(), 2), "pairwise": K.PairwiseKernel(metric="rbf"),
        "anisotropic": K.RBF(length_scale=[1.0] * 4),
    }
    for name, kern in kernels.items():
        v.append((f"GPR-{name}", gaussian_process.GaussianProcessRegressor(kernel=kern, optimizer=None, alpha=0.1),
                  X, yr))
    v.append(("GPC-multi", gaussian_process.GaussianProcessClassifier(multi_class="one_vs_one"), X, yc))
    v.append(("MLP-sgd", neural_network.MLPClassifier(solver="sgd", max_iter=5), X, yc))
    v.append(("MLP-lbfgs", neural_network.MLPRegressor(solver="lbfgs", max_iter=5), X, yr))
    for kern in ("linear", "poly", "rbf", "sigmoid"):
        v.append((f"SVC-{kern}", svm.SVC(kernel=kern, probability=True), X, yc))
    v.append(("SVC-precomputed", svm.SVC(kernel="precomputed"), X @ X.T, yc))
    v.append(("SVR", svm.SVR(), X, yr))
    v.append(("DecisionTree-entropy", tree.DecisionTreeClassifier(criterion="entropy", class_weight="balanced"), X, yc))
    v.append(("DecisionTree-poisson", tree.DecisionTreeRegressor(criterion="poisson"), X, yr))
    v.append(("RandomForest-oob", ensemble.RandomForestClassifier(n_estimators=3, oob_score=True), X, yc))
    v.append(("IsolationForest", ensemble.IsolationForest(n_estimators=3), X, None))
    for sf in ("chi2", "f_classif", "mutual_info_classif"):
        v.append((f"SelectKBest-{sf}", feature_selection.SelectKBest(getattr(feature_selection, sf), k=2), X, yc))
    for sf in ("f_regression", "r_regression", "mutual_info_regression"):
        v.append((f"SelectKBest-{sf}", feature_selection.SelectKBest(getattr(feature_selection, sf), k=2), X, yr))
    for scoring in ("accuracy", "roc_auc_ovr", "f1_macro", "neg_log_loss", "balanced_accuracy",
                    ("accuracy", "precision_macro")):
        refit = "accuracy" if isinstance(scoring, tuple) else True
        v.append((f"GridSearchCV-{scoring}", model_selection.GridSearchCV(
            linear_model.LogisticRegression(), {"C": [0.1, 1.0]}, scoring=scoring, refit=refit, cv=2), X, yc))
    for scoring in ("r2", "neg_mean_squared_error", "neg_mean_absolute_error", "neg_root_mean_squared_error"):
        v.append((f"GridSearchCV-{scoring}", model_selection.GridSearchCV(
            linear_model.Ridge(), {"alpha": [0.1, 1.0]}, scoring=scoring, cv=2), X, yr))
    for cv in (model_selection.KFold(2, shuffle=True, random_state=0), model_selection.ShuffleSplit(2),
               model_selection.StratifiedShuffleSplit(2), model_selection.RepeatedKFold(n_splits=2, n_repeats=1),
               model_selection.TimeSeriesSplit(2), model_selection.RepeatedStratifiedKFold(n_splits=2, n_repeats=1)):
        v.append((f"RandomizedSearchCV-{type(cv).__name__}", model_selection.RandomizedSearchCV(
            linear_model.LogisticRegression(), {"C": [0.1, 1.0]}, n_iter=2, cv=cv, random_state=0), X, yc))
    cat = np.array([["a", "x"], ["b", "y"], ["a", "y"]] * 20, dtype=object)
    mixed = np.c_[X[:, :2], cat].astype(object)
    ct = compose.ColumnTransformer([
        ("num", pipeline.make_pipeline(impute.SimpleImputer(strategy="median"), preprocessing.StandardScaler()), [0, 1]),
        ("cat", preprocessing.OneHotEncoder(handle_unknown="ignore"), [2, 3]),
    ], remainder="drop")
    v.append(("Pipeline-ColumnTransformer", pipeline.Pipeline([("ct", ct), ("clf", linear_model.LogisticRegression())]),
              mixed, yc))
    ct2 = compose.ColumnTransformer([("ord", preprocessing.OrdinalEncoder(), [2, 3]), ("pass", "passthrough", [0])],
                                    remainder=preprocessing.MinMaxScaler())
    v.append(("ColumnTransformer-remainder", ct2, mixed, None))
    # make_column_selector needs a pandas DataFrame to fit; the unfitted transformer is what gets pickled
    v.append(("make_column_selector", compose.make_column_transformer(
        (preprocessing.StandardScaler(), compose.make_column_selector(dtype_include=np.number)), remainder="drop"),
        None, None))
    v.append(("SparseCoder", __import__("sklearn.decomposition", fromlist=["x"]).SparseCoder(
        dictionary=np.eye(4)[:3]), X, None))
    v.append(("IterativeImputer", __import__("sklearn.impute", fromlist=["x"]).IterativeImputer(max_iter=2),
              np.where(X > 0.9, np.nan, X), None))
    import scipy.sparse as sp

    Xs = sp.csr_matrix(np.where(X > 0.5, X, 0.0))
    v.append(("NearestNeighbors-sparse", neighbors.NearestNeighbors(algorithm="brute"), Xs, None))
    v.append(("LogisticRegression-sparse-csc", linear_model.LogisticRegression(), Xs.tocsc(), yc))
    v.append(("FunctionTransformer", preprocessing.FunctionTransformer(), X, None))
    v.append(("FunctionTransformer-numpy", preprocessing.FunctionTransformer(np.log1p, inverse_func=np.expm1), X, None))
    v.append(("TransformedTargetRegressor-numpy", compose.TransformedTargetRegressor(
        regressor=linear_model.Ridge(), func=np.log1p, inverse_func=np.expm1), X, yr))
    v.append(("OneHotEncoder-strings", preprocessing.OneHotEncoder(drop="first", sparse_output=False), cat, None))
    v.append(("OneHotEncoder-sparse", preprocessing.OneHotEncoder(), cat, None))
    v.append(("TargetEncoder", preprocessing.TargetEncoder(), cat, yb))
    v.append(("KBinsDiscretizer-onehot", preprocessing.KBinsDiscretizer(encode="onehot"), X, None))
    v.append(("PowerTransformer-boxcox", preprocessing.PowerTransformer(method="box-cox"), X, None))
    v.append(("SplineTransformer", preprocessing.SplineTransformer(), X, None))
    v.append(("Nystroem-poly", kernel_approximation.Nystroem(kernel="poly", n_components=5), X, None))
    v.append(("CalibratedClassifierCV-isotonic", __import__("sklearn.calibration", fromlist=["x"]).CalibratedClassifierCV(
        linear_model.LogisticRegression(), method="isotonic", cv=2), X, yc))
    v.append(("VotingClassifier-soft", ensemble.VotingClassifier(
        [("lr", linear_model.LogisticRegression()), ("dt", tree.DecisionTreeClassifier())], voting="soft"), X, yc))
    v.append(("StackingClassifier", ensemble.StackingClassifier(
        [("lr", linear_model.LogisticRegression()), ("nb", __import__("sklearn.naive_bayes", fromlist=["x"]).GaussianNB())],
        cv=2), X, yc))
    v.append(("BaggingClassifier-knn", ensemble.BaggingClassifier(neighbors.KNeighborsClassifier(), n_estimators=2), X, yc))
    v.append(("TfidfVectorizer-char", __import__("sklearn.feature_extraction.text", fromlist=["x"]).TfidfVectorizer(
        analyzer="char_wb", ngram_range=(1, 2), dtype=np.float32), texts, None))
    v.append(("CountVectorizer-binary", __import__("sklearn.feature_extraction.text", fromlist=["x"]).CountVectorizer(
        binary=True, stop_words="english", max_features=5), texts, None))
    return v


def _dump(obj, out: str, name: str):
    """Pickle one fitted object three ways; yields Cases."""
    safe = name.replace("/", "_").replace(" ", "_").replace("'", "").replace(",", "")[:80]
    for proto in (2, 5):
        path = os.path.join(out, f"sk_{safe}_p{proto}.pkl")
        with open(path, "wb") as f:
            pickle.dump(obj, f, protocol=proto)
        yield Case(f"{SKLEARN}: pickle of a fitted estimator (protocol {proto})", path, "pickle")
    path = os.path.join(out, f"sk_{safe}.joblib")
    joblib.dump(obj, path)
    yield Case(f"{SKLEARN} + joblib {joblib.__version__}: joblib.dump of a fitted estimator", path, "joblib")


def fitted():
    """Every fitted estimator and variant, as (name, object); also fills SKIPPED."""
    # experimental estimators are listed by all_estimators() only once enabled
    from sklearn.experimental import enable_halving_search_cv, enable_iterative_imputer  # noqa: F401
    from sklearn.utils import all_estimators

    warnings.filterwarnings("ignore")
    SKIPPED.clear()
    seen = set()
    for name, Estimator in all_estimators():
        try:
            instances = _instances(Estimator)
        except BaseException as e:  # sklearn raises SkipTest for estimators it cannot build
            SKIPPED.append((name, f"cannot construct: {type(e).__name__}: {e}"))
            continue
        for i, est in enumerate(instances):
            try:
                fitted = _fit(est)
            except Exception as e:
                SKIPPED.append((name, f"cannot fit on the synthetic data: {e}"[:160]))
                continue
            seen.add(name)
            yield f"{name}_{i}", fitted
    for name, est, X, y in _variants():
        try:
            np.random.seed(0)
            if X is not None:
                est = _seed(est)
                est = est.fit(X) if y is None else est.fit(X, y)
            yield f"variant_{name}", est
            seen.add(type(est).__name__)
        except Exception as e:
            SKIPPED.append((f"variant {name}", f"{type(e).__name__}: {e}"[:160]))
    # metadata routing stores request objects on the estimator
    try:
        from sklearn.linear_model import LogisticRegression

        with sklearn.config_context(enable_metadata_routing=True):
            X, yc, *_ = _data()
            est = LogisticRegression().set_fit_request(sample_weight=True).fit(X, yc)
            yield "metadata_routing", est
    except Exception as e:
        SKIPPED.append(("metadata routing", str(e)[:160]))
    try:
        from sklearn.frozen import FrozenEstimator
        from sklearn.linear_model import LogisticRegression

        X, yc, *_ = _data()
        yield "FrozenEstimator", FrozenEstimator(LogisticRegression().fit(X, yc))
        seen.add("FrozenEstimator")
    except Exception as e:
        SKIPPED.append(("FrozenEstimator", str(e)[:160]))
    # estimators whose default instance failed but a variant above covered
    SKIPPED[:] = [s for s in SKIPPED if s[0] not in seen]
    missing = sorted({n for n, _ in all_estimators()} - seen)
    for n in missing:
        if not any(s[0] == n for s in SKIPPED):
            SKIPPED.append((n, "no instance fitted"))


def cases(out: str):
    for name, est in fitted():
        try:
            yield from _dump(est, out, name)
        except Exception as e:
            SKIPPED.append((name, f"cannot pickle: {e}"[:160]))
