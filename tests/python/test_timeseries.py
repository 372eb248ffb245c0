"""The time-series library (issue 19) through the official DolphinDB Python client: every
answer is checked against an independent pandas computation over the same uploaded data."""
import dolphindb as ddb
import numpy as np
import pandas as pd


def connect(server):
    s = ddb.session()
    s.connect(server[0], server[1], "admin", "123456")
    return s


def market(n_sym=4, minutes=30, seed=7):
    rng = np.random.default_rng(seed)
    rows = []
    start = pd.Timestamp("2024-03-01 09:30:00")
    for k in range(n_sym):
        for m in range(minutes):
            rows.append((f"S{k}", start + pd.Timedelta(seconds=60 * m + int(rng.integers(0, 59))),
                         round(10 + k + float(rng.normal()), 2), int(rng.integers(1, 500))))
    df = pd.DataFrame(rows, columns=["sym", "time", "price", "qty"])
    df["qty"] = df["qty"].astype(np.int32)
    return df.sort_values(["time", "sym"], kind="stable").reset_index(drop=True)


def test_moving_cumulative_and_offsets_per_group(server):
    s = connect(server)
    df = market()
    s.upload({"t": df})
    got = s.run("select sym, time, mavg(price, 5) as ma, msum(qty, 3) as sq, cummax(price) as hi,"
                " prev(price) as p, ema(price, 4) as e from t context by sym")
    exp = df.sort_values(["sym"], kind="stable").reset_index(drop=True)
    g = exp.groupby("sym")
    np.testing.assert_allclose(got["ma"], g["price"].transform(lambda x: x.rolling(5).mean()))
    np.testing.assert_allclose(got["sq"], g["qty"].transform(lambda x: x.rolling(3).sum()))
    np.testing.assert_allclose(got["hi"], g["price"].cummax())
    np.testing.assert_allclose(got["p"], g["price"].shift(1))
    # ema: the first value is the mean of the first window, then 2/(w+1) smoothing.
    def ema(x, w=4):
        out, prev = [np.nan] * len(x), np.nan
        for i, v in enumerate(x):
            if i + 1 == w:
                prev = float(np.mean(x[:w]))
                out[i] = prev
            elif i + 1 > w:
                prev = 2 / (w + 1) * v + (1 - 2 / (w + 1)) * prev
                out[i] = prev
        return pd.Series(out, index=x.index)
    np.testing.assert_allclose(got["e"], g["price"].transform(lambda x: ema(x.reset_index(drop=True)).set_axis(x.index)))


def test_time_windows_bars_and_interval(server):
    s = connect(server)
    df = market()
    s.upload({"t": df})
    bars = s.run("select first(price) as open, max(price) as high, min(price) as low,"
                 " last(price) as close, sum(qty) as vol from t group by sym, bar(time, 5m) as bar")
    df["bar"] = df["time"].dt.floor("5min")
    g = df.groupby(["sym", "bar"], sort=True)
    exp = pd.DataFrame({"open": g["price"].first(), "high": g["price"].max(), "low": g["price"].min(),
                        "close": g["price"].last(), "vol": g["qty"].sum()}).reset_index()
    pd.testing.assert_frame_equal(bars[["sym", "bar"]].astype({"bar": "datetime64[ns]"}),
                                  exp[["sym", "bar"]].astype({"bar": "datetime64[ns]"}))
    np.testing.assert_allclose(bars[["open", "high", "low", "close"]], exp[["open", "high", "low", "close"]])
    assert bars["vol"].tolist() == exp["vol"].tolist()
    # tmsum over 3 minutes (left-open), per symbol.
    got = s.run("select sym, tmsum(time, qty, 3m) as s3 from t context by sym")
    exp = df.sort_values("sym", kind="stable").set_index("time").groupby("sym")["qty"] \
        .rolling("180s", closed="right").sum().reset_index(drop=True)
    np.testing.assert_allclose(got["s3"], exp)


def test_asof_and_window_joins_match_pandas(server):
    s = connect(server)
    trades = market(seed=1)[["sym", "time", "price"]]
    quotes = market(seed=2).rename(columns={"price": "bid"})[["sym", "time", "bid"]]
    s.upload({"trades": trades, "quotes": quotes})
    got = s.run("aj(trades, quotes, `sym`time)")
    exp = pd.merge_asof(trades.sort_values("time"), quotes.sort_values("time"), on="time", by="sym")
    exp = trades.merge(exp, on=["sym", "time", "price"], how="left")
    np.testing.assert_allclose(got["bid"], exp["bid"])
    # Equi join in SQL, and a window join summing the bids of the last minute.
    ej = s.run("select trades.sym, trades.time, price, bid from trades inner join quotes"
               " on trades.sym = quotes.sym and trades.time = quotes.time")
    assert len(ej) == len(trades.merge(quotes, on=["sym", "time"]))
    wj = s.run("wj(trades, quotes, -60s:0s, <[count(bid) as n, sum(bid) as total]>, `sym`time)")
    for i in range(0, len(trades), 17):
        t = trades.iloc[i]
        w = quotes[(quotes.sym == t.sym) & (quotes.time >= t.time - pd.Timedelta("60s"))
                   & (quotes.time <= t.time)]
        assert wj["n"][i] == len(w)
        if len(w):
            assert abs(wj["total"][i] - w["bid"].sum()) < 1e-9


def test_statistics_ranks_strings_and_pivot(server):
    s = connect(server)
    df = market()
    s.upload({"t": df})
    stats = s.run("select percentile(price, 25) as p25, mad(price) as mad, skew(price) as sk,"
                  " corr(price, qty) as c, nunique(qty) as nq from t group by sym")
    for i, (sym, g) in enumerate(df.groupby("sym", sort=True)):
        x = g["price"]
        assert abs(stats["p25"][i] - np.percentile(x, 25)) < 1e-9
        assert abs(stats["mad"][i] - (x - x.mean()).abs().mean()) < 1e-9
        m2 = ((x - x.mean()) ** 2).mean()
        assert abs(stats["sk"][i] - ((x - x.mean()) ** 3).mean() / m2 ** 1.5) < 1e-9
        assert abs(stats["c"][i] - x.corr(g["qty"].astype(float))) < 1e-9
        assert stats["nq"][i] == g["qty"].nunique()
    ranks = s.run("rank(1 7 4 4 9)")
    assert ranks.tolist() == [0, 3, 1, 1, 4]
    assert s.run("regexReplace(\"a1b22\", \"[0-9]+\", \"#\")") == "a#b#"
    assert s.run("temporalFormat(2024.03.01T09:30:05, \"yyyy/MM/dd HH:mm\")") == "2024/03/01 09:30"
    piv = s.run("select last(price) from t pivot by bar(time, 10m) as b, sym")
    df["b"] = df["time"].dt.floor("10min")
    exp = df.groupby(["b", "sym"])["price"].last().unstack()
    np.testing.assert_allclose(piv[["S0", "S1", "S2", "S3"]].to_numpy(), exp[["S0", "S1", "S2", "S3"]].to_numpy())


def test_library_over_a_dfs_table(server):
    s = connect(server)
    df = market(n_sym=3, minutes=60)
    s.run("if (existsDatabase('dfs://ts')) { dropDatabase('dfs://ts') }\n"
          "db = database('dfs://ts', VALUE, `S0`S1`S2)\n"
          "t0 = table(1:0, `sym`time`price`qty, [SYMBOL, TIMESTAMP, DOUBLE, INT])\n"
          "db.createPartitionedTable(t0, `pt, `sym)")
    s.upload({"src": df})
    s.run("loadTable('dfs://ts', 'pt').append!(select sym, timestamp(time) as time, price, qty from src)")
    got = s.run("select sym, time, mavg(price, 10) as ma from loadTable('dfs://ts', 'pt') context by sym csort time")
    exp = df.sort_values(["sym", "time"], kind="stable").reset_index(drop=True)
    exp["ma"] = exp.groupby("sym")["price"].transform(lambda x: x.rolling(10).mean())
    np.testing.assert_allclose(got["ma"], exp["ma"])
    bars = s.run("select count(*) as n from loadTable('dfs://ts', 'pt') group by sym, bar(time, 15m)")
    assert bars["n"].sum() == len(df)
    assert len(bars) == len(df.groupby(["sym", df["time"].dt.floor("15min")]))
