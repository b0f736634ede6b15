"""What a user would pick instead, run in the same benchmark: a stock KServe ModelServer with a
scikit-learn LogisticRegression (the way KServe's sklearn runtime serves it), and a minimal
FastAPI endpoint as the floor of the stack.

    python bench/stock_servers.py sklearn DATA.csv PORT GRPC_PORT
    python bench/stock_servers.py fastapi PORT
"""

import sys

FEATURES = ["AMT_INCOME_TOTAL", "AMT_CREDIT", "DAYS_BIRTH", "AMT_GOODS_PRICE"]


def sklearn_server(data: str, http_port: int, grpc_port: int) -> None:
    sys.argv = sys.argv[:1]
    import kserve
    import pandas as pd
    from kserve.utils.utils import get_predict_input, get_predict_response
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    frame = pd.read_csv(data, usecols=["TARGET", *FEATURES])
    pipeline = make_pipeline(
        SimpleImputer(strategy="median"), StandardScaler(), LogisticRegression()
    )
    pipeline.fit(frame[FEATURES].to_numpy(), frame["TARGET"].to_numpy())

    class SKLearnModel(kserve.Model):  # as kserve's sklearnserver: predict_proba on inputs
        def load(self) -> bool:
            self.ready = True
            return True

        def predict(self, payload, headers=None):  # type: ignore[no-untyped-def]
            instances = get_predict_input(payload)
            return get_predict_response(payload, pipeline.predict_proba(instances)[:, 1], self.name)

    model = SKLearnModel("sklearn")
    model.load()
    kserve.ModelServer(
        http_port=http_port, grpc_port=grpc_port, enable_latency_logging=False
    ).start([model])


def fastapi_floor(port: int) -> None:
    import uvicorn
    from fastapi import FastAPI, Request

    app = FastAPI()

    @app.post("/predict")
    async def predict(request: Request) -> dict[str, float]:
        await request.json()
        return {"prob_default": 0.1}

    @app.get("/ready")
    async def ready() -> dict[str, bool]:
        return {"ready": True}

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


if __name__ == "__main__":
    if sys.argv[1] == "sklearn":
        sklearn_server(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    else:
        fastapi_floor(int(sys.argv[2]))
