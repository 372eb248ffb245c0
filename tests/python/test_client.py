"""The official DolphinDB Python client (dolphindb==3.0.6.1), unmodified, against Porpoise."""
import socket

import dolphindb as ddb
import numpy as np
import pandas as pd
import pytest

from pooled import partitioned_append


def connect(server, user="admin", password="123456"):
    s = ddb.session()
    s.connect(server[0], server[1], user, password)
    return s


def test_connect_with_and_without_login(server):
    s = connect(server)
    assert s.run("1 + 1") == 2
    anon = ddb.session()
    anon.connect(server[0], server[1])
    anon.login("admin", "123456")
    assert anon.run("2 * 21") == 42


def test_wrong_password_is_refused(server, capfd):
    s = ddb.session()
    assert not s.connect(server[0], server[1], "admin", "wrong")
    assert "The user name or password is incorrect" in capfd.readouterr().out
    with pytest.raises(Exception):
        s.run("1")


def test_scalars_vectors_and_tables(server):
    s = connect(server)
    assert s.run("`abc") == "abc"
    assert s.run("3.5 * 2") == 7.0
    np.testing.assert_array_equal(s.run("1..5 * 2"), np.array([2, 4, 6, 8, 10]))
    df = s.run("table(1 2 3 as a, `x`y`z as b, 1.5 2.5 3.5 as c)")
    pd.testing.assert_frame_equal(df, pd.DataFrame({"a": np.array([1, 2, 3], dtype=np.int32), "b": ["x", "y", "z"], "c": [1.5, 2.5, 3.5]}))
    dt = s.run("2023.01.08T09:30:00 + 0 60")
    assert list(dt) == [np.datetime64("2023-01-08T09:30:00"), np.datetime64("2023-01-08T09:31:00")]


def test_function_calls_with_python_arguments(server):
    s = connect(server)
    assert s.run("add", 3, 4) == 7
    assert s.run("add", 1.5, 2) == 3.5
    assert s.run("upper", "porpoise") == "PORPOISE"
    np.testing.assert_array_equal(s.run("cumsum", [1, 2, 3]), np.array([1, 3, 6]))
    np.testing.assert_array_equal(s.run("add", np.array([1, 2], dtype=np.int32), 10), np.array([11, 12]))
    assert list(s.run("keys", {"b": 2, "a": 1})) == ["a", "b"]
    assert s.run("size", {"b": 2, "a": 1}) == 2
    s.run("def f(x, y) { return x * 10 + y }")
    assert s.run("f", 4, 2) == 42


def test_uploads_round_trip(server):
    s = connect(server)
    df = pd.DataFrame({"i": np.array([1, 2, 3], dtype=np.int32), "d": [0.5, 1.5, 2.5], "s": ["a", "b", "c"],
                       "l": np.array([10, 20, 30], dtype=np.int64), "b": [True, False, True]})
    s.upload({"up": df})
    back = s.run("up")
    pd.testing.assert_frame_equal(back, df)
    s.upload({"v": np.array([5, 6, 7], dtype=np.int32)})
    np.testing.assert_array_equal(s.run("v * 2"), np.array([10, 12, 14]))


def test_server_errors_are_exceptions(server):
    s = connect(server)
    with pytest.raises(Exception, match="Cannot recognize the token nosuch"):
        s.run("nosuch(1)")
    with pytest.raises(Exception, match="line #2"):
        s.run("x = 1\ny = (2 +")
    assert s.run("1") == 1, "the session survives its own errors"


def test_tutorial_generation_and_ohlc_in_memory(server):
    s = connect(server)
    s.run("""
n = 1210000
randPrice = round(10+rand(1.0, 100), 2)
randVolume = 100+rand(100, 100)
SecurityID = lpad(string(take(0..4999, 5000)), 6, `0)
DateTime = (2023.01.08T09:30:00 + take(0..120, 121)*60).join(2023.01.08T13:00:00 + take(0..120, 121)*60)
PreClosePx = rand(randPrice, n)
OpenPx = rand(randPrice, n)
HighPx = rand(randPrice, n)
LowPx = rand(randPrice, n)
LastPx = rand(randPrice, n)
Volume = int(rand(randVolume, n))
Amount = round(LastPx*Volume, 2)
tmp = cj(table(SecurityID), table(DateTime))
t = tmp.join!(table(PreClosePx, OpenPx, HighPx, LowPx, LastPx, Volume, Amount))
""")
    q1 = s.run("select count(*) from t group by date(DateTime) as Date")
    assert list(q1.columns) == ["Date", "count"]
    assert q1["count"].tolist() == [1210000]
    s.run("result = select first(LastPx) as Open, max(LastPx) as High, min(LastPx) as Low, last(LastPx) as Close from t group by date(DateTime) as Date, SecurityID")
    result = s.run("result")
    assert len(result) == 5000
    t = s.run("select SecurityID, LastPx from t")
    g = t.groupby("SecurityID")["LastPx"]
    expected = pd.DataFrame({"Open": g.first(), "High": g.max(), "Low": g.min(), "Close": g.last()}).reset_index(drop=True)
    pd.testing.assert_frame_equal(result[["Open", "High", "Low", "Close"]].reset_index(drop=True), expected)


def test_garbage_on_another_connection_harms_no_session(server):
    s = connect(server)
    s.run("keep = 99")
    junk = socket.create_connection(server)
    junk.sendall(b"API 0 999999999999 / 32_1_4_2\n\xff\xff")
    junk.settimeout(5)
    try:
        junk.recv(16)
    except OSError:
        pass
    junk.close()
    raw = socket.create_connection(server)
    raw.sendall(b"\x00\x01\x02 not a request at all\r\n\r\n")
    raw.close()
    assert s.run("keep") == 99


def test_print_output_reaches_the_client(server, capfd):
    s = connect(server)
    s.run("print('hello from porpoise')\nx = 1")
    assert "hello from porpoise" in capfd.readouterr().out


def test_high_availability_connect_and_cluster_perf(server):
    site = f"{server[0]}:{server[1]}"
    s = ddb.session()
    assert s.connect(server[0], server[1], "admin", "123456", highAvailability=True, highAvailabilitySites=[site])
    assert s.run("1 + 2") == 3
    perf = s.run("rpc(getControllerAlias(), getClusterPerf)")
    assert perf["port"].tolist() == [server[1]]
    assert perf["state"].tolist() == [1]
    assert s.run("getNodeAlias()") == "pytest1"


def test_table_helpers_and_appender(server):
    s = connect(server)
    df = pd.DataFrame({"id": np.array([1, 2], dtype=np.int32), "v": [1.5, 2.5]})
    t = s.table(data=df, tableAliasName="memt")
    assert t.tableName() == "memt"
    assert s.run("schema(memt)")["colDefs"]["name"].tolist() == ["id", "v"]
    appender = ddb.TableAppender(table_name="memt", conn=s)
    more = pd.DataFrame({"id": np.array([3], dtype=np.int32), "v": [3.5]})
    assert appender.append(more) == 1
    assert s.run("exec v from memt").tolist() == [1.5, 2.5, 3.5]
    s.run("undef('memt')")
    with pytest.raises(Exception):
        s.run("memt")


def _script(name):
    import os
    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(here, "..", "..", "lang", "tests", "scripts", name)) as f:
        return f.read()


def test_tutorial_steps_5_and_6_verbatim_on_dfs(server):
    s = connect(server)
    s.run(_script("tutorial_step5.dos"))
    q1 = s.run("pt = loadTable(\"dfs://testDB\", \"testTB\")\nselect count(*) from pt group by date(DateTime) as Date")
    assert q1["count"].tolist() == [1210000]
    assert q1["Date"].tolist() == [pd.Timestamp("2023-01-08")]
    s.run(_script("tutorial_step6.dos"))
    result = s.run("result")
    assert len(result) == 5000
    t = s.run("select SecurityID, LastPx from loadTable(\"dfs://testDB\", \"testTB\")")
    g = t.groupby("SecurityID", sort=True)["LastPx"]
    expected = pd.DataFrame({"Open": g.first(), "High": g.max(), "Low": g.min(), "Close": g.last()}).reset_index(drop=True)
    pd.testing.assert_frame_equal(result[["Open", "High", "Low", "Close"]].reset_index(drop=True), expected)
    assert s.run("existsDatabase(\"dfs://testDB\")")


def test_load_table_and_appenders_into_dfs(server):
    s = connect(server)
    s.run("if (existsDatabase('dfs://apps')) { dropDatabase('dfs://apps') }\n"
          "db = database('dfs://apps', VALUE, 2023.01.01..2023.01.02)\n"
          "t = table(1 2 as id, 2023.01.01 2023.01.02 as d, 0.5 1.5 as v)\n"
          "db.createPartitionedTable(table=t, tableName='pt', partitionColumns=`d)")
    assert len(s.loadTable(tableName="pt", dbPath="dfs://apps").toDF()) == 0
    one = pd.DataFrame({"id": np.array([1], dtype=np.int32), "d": [pd.Timestamp("2023-01-03")], "v": [2.5]})
    assert ddb.TableAppender(db_path="dfs://apps", table_name="pt", conn=s).append(one) == 1
    many = pd.DataFrame({"id": np.array([2, 3, 4], dtype=np.int32),
                         "d": pd.to_datetime(["2023-01-01", "2023-01-02", "2023-01-01"]), "v": [1.0, 2.0, 3.0]})
    assert partitioned_append(*server, "dfs://apps", "pt", "d", many) in (3, None)
    counts = s.run("select count(*) from loadTable('dfs://apps', 'pt') group by d")
    assert counts["count"].tolist() == [2, 1, 1]
    assert sorted(s.loadTable(tableName="pt", dbPath="dfs://apps").toDF()["id"].tolist()) == [1, 2, 3, 4]


def test_every_type_uploads_and_downloads_with_nulls(server):
    import dolphindb.settings as keys
    import warnings
    s = connect(server)
    ts = pd.to_datetime(["2023-01-08 09:30:00.123456789", None, "1969-12-31 23:59:59.000000000"])
    df = pd.DataFrame({
        "b": [True, None, False], "c": np.array([1, -2, 3], dtype=np.int8),
        "h": np.array([1, 2, 3], dtype=np.int16), "i": [1.0, None, 3.0],
        "l": np.array([1, 2, 3], dtype=np.int64), "f": np.array([1.5, np.nan, 2.5], dtype=np.float32),
        "d": [1.5, np.nan, -2.0], "sym": ["A", None, "B"], "str": ["x", "", None],
        "date": ts, "month": ts, "time": ts, "minute": ts, "second": ts, "datetime": ts,
        "timestamp": ts, "nanotime": ts, "nanotimestamp": ts,
    })
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        df.__DolphinDB_Type__ = {
            "b": keys.DT_BOOL, "i": keys.DT_INT, "sym": keys.DT_SYMBOL, "str": keys.DT_STRING,
            "date": keys.DT_DATE, "month": keys.DT_MONTH, "time": keys.DT_TIME,
            "minute": keys.DT_MINUTE, "second": keys.DT_SECOND, "datetime": keys.DT_DATETIME,
            "timestamp": keys.DT_TIMESTAMP, "nanotime": keys.DT_NANOTIME,
            "nanotimestamp": keys.DT_NANOTIMESTAMP}
    s.upload({"every": df})
    types = list(s.run("schema(every)")["colDefs"]["typeString"])
    assert types == ["BOOL", "CHAR", "SHORT", "INT", "LONG", "FLOAT", "DOUBLE", "SYMBOL", "STRING",
                     "DATE", "MONTH", "TIME", "MINUTE", "SECOND", "DATETIME", "TIMESTAMP",
                     "NANOTIME", "NANOTIMESTAMP"]
    # The server sees the nulls as nulls: one per nullable column in row 1 (row 2 for `str`).
    nulls = s.run("select count(*) from every where isNull(i) and isNull(f) and isNull(d) "
                  "and isNull(b) and isNull(sym) and isNull(date) and isNull(nanotimestamp)")
    assert nulls.iloc[0, 0] == 1
    back = s.run("every")
    assert list(back["b"]) == [True, None, False]
    assert list(back["c"]) == [1, -2, 3] and back["c"].dtype == np.int8
    assert list(back["h"]) == [1, 2, 3] and back["h"].dtype == np.int16
    np.testing.assert_array_equal(back["i"], [1.0, np.nan, 3.0])
    np.testing.assert_array_equal(back["f"], np.array([1.5, np.nan, 2.5], dtype=np.float32))
    np.testing.assert_array_equal(back["d"], [1.5, np.nan, -2.0])
    assert list(back["sym"]) == ["A", "", "B"]
    assert list(back["str"]) == ["x", "", ""]
    t = pd.Timestamp
    expected = {
        "date": [t("2023-01-08"), t("1969-12-31")],
        # The client itself turns 1969-12-31T23:59:59 into 1970.01M (it truncates toward zero
        # before converting to MONTH; seen with 3.0.6.1): the server returns what it was sent.
        "month": [t("2023-01-01"), t("1970-01-01")],
        "time": [t("1970-01-01 09:30:00.123"), t("1970-01-01 23:59:59")],
        "minute": [t("1970-01-01 09:30"), t("1970-01-01 23:59")],
        "second": [t("1970-01-01 09:30:00"), t("1970-01-01 23:59:59")],
        "datetime": [t("2023-01-08 09:30:00"), t("1969-12-31 23:59:59")],
        "timestamp": [t("2023-01-08 09:30:00.123"), t("1969-12-31 23:59:59")],
        "nanotime": [t("1970-01-01 09:30:00.123456789"), t("1970-01-01 23:59:59")],
        "nanotimestamp": [t("2023-01-08 09:30:00.123456789"), t("1969-12-31 23:59:59")],
    }
    for col, (first, last) in expected.items():
        assert back[col][0] == first, col
        assert pd.isna(back[col][1]), col
        assert back[col][2] == last, col


def test_matrix_set_and_dictionary_forms(server):
    s = connect(server)
    m, rows, cols = s.run("matrix(1 2 3, 4 5 6)")
    np.testing.assert_array_equal(m, np.array([[1, 4], [2, 5], [3, 6]], dtype=np.int32))
    assert rows is None and cols is None
    assert s.run("set(1 2 2 3)") == {1, 2, 3}
    assert s.run("dict(`a`b, 1 2)") == {"a": 1, "b": 2}
    s.upload({"um": np.array([[1.5, 2.5], [3.5, 4.5]]), "us": {"x", "y"}})
    assert s.run("typestr(um)") == "FAST DOUBLE MATRIX"
    assert (s.run("rows(um)"), s.run("cols(um)")) == (2, 2)
    np.testing.assert_array_equal(s.run("transpose(um)")[0], np.array([[1.5, 3.5], [2.5, 4.5]]))
    assert s.run("typestr(us)") == "STRING SET"
    assert s.run("us") == {"x", "y"}
    assert s.run("size", {7, 8, 9}) == 3
    assert s.run("[1969.12M, 2023.01M]")[0] == np.datetime64("1969-12")


def test_dfs_needs_login(server):
    anon = ddb.session()
    anon.connect(server[0], server[1])
    assert anon.run("1 + 2") == 3
    assert anon.run("existsDatabase('dfs://rights')") is False
    with pytest.raises(Exception, match="NoPrivilege"):
        anon.run("database('dfs://rights', VALUE, 1 2 3)")
    anon.login("admin", "123456")
    anon.run("db = database('dfs://rights', VALUE, 1 2 3)")
    assert anon.run("existsDatabase('dfs://rights')") is True
    anon.run("logout()")
    with pytest.raises(Exception, match="NoPrivilege"):
        anon.run("loadTable('dfs://rights', 't')")


def test_unsupported_options_get_a_clear_error(server, capfd):
    import dolphindb.settings as keys
    for options, name in [(dict(compress=True), "compression"), (dict(protocol=keys.PROTOCOL_PICKLE), "pickle")]:
        s = ddb.session(**options)
        assert not s.connect(server[0], server[1], "admin", "123456")
        assert f"does not support the {name} protocol option" in capfd.readouterr().out
    s = connect(server)
    with pytest.raises(Exception, match="does not support the fetchSize protocol option"):
        s.run("table(1..100 as x)", fetchSize=8192)
    assert connect(server).run("1 + 1") == 2, "the server carries on"


def test_compo_and_range_databases_with_the_partitioned_appender(server):
    s = connect(server)
    s.run("""
    if (existsDatabase("dfs://pycompo")) { dropDatabase("dfs://pycompo") }
    if (existsDatabase("dfs://pyrange")) { dropDatabase("dfs://pyrange") }
    db1 = database("", VALUE, 2023.01.01..2023.01.03)
    db2 = database("", HASH, [SYMBOL, 4])
    db = database("dfs://pycompo", COMPO, [db1, db2])
    db.createPartitionedTable(table(2023.01.01 as d, `A as sym, 1.0 as px), `pt, `d`sym)
    rdb = database("dfs://pyrange", RANGE, 0 50 100)
    rdb.createPartitionedTable(table(1 as id, 1.0 as v), `rt, `id)
    """)
    info = s.run("schema(loadTable('dfs://pycompo', `pt))")
    assert info["partitionType"] == [1, 5] and info["partitionColumnName"] == ["d", "sym"]
    df = pd.DataFrame({"d": pd.to_datetime(["2023-01-01", "2023-01-02", "2023-01-03"] * 4),
                       "sym": list("ABCDEFGHIJKL"), "px": np.arange(12.0)})
    assert partitioned_append(*server, "dfs://pycompo", "pt", "d", df) in (12, None)
    counts = s.run("select count(*) from loadTable('dfs://pycompo', `pt) group by d")
    assert list(counts["count"]) == [4, 4, 4]
    ids = pd.DataFrame({"id": np.array([1, 60, 99, 20], dtype=np.int32), "v": [1.0, 2.0, 3.0, 4.0]})
    assert partitioned_append(*server, "dfs://pyrange", "rt", "id", ids) in (4, None)
    assert s.run("exec count(*) from loadTable('dfs://pyrange', `rt)") == 4
    high = s.run("select * from loadTable('dfs://pyrange', `rt) where id >= 50 order by id")
    assert list(high["id"]) == [60, 99]
    with pytest.raises(Exception, match="outside the RANGE partitions"):
        s.run("loadTable('dfs://pyrange', `rt).append!(table(100 as id, 1.0 as v))")


def test_update_delete_and_add_column_on_a_dfs_table(server):
    """update / delete rewrite the partitions they touch in one transaction; addColumn gives old
    rows nulls; a restart-free read sees it all (the single node is a one-node cluster)."""
    s = connect(server)
    s.run("if (existsDatabase('dfs://dml')) { dropDatabase('dfs://dml') }\n"
          "db = database('dfs://dml', VALUE, 1..4)\n"
          "t = table(take(1..4, 1000) as k, 0..999 as v, take(`a`b, 1000) as s)\n"
          "db.createPartitionedTable(t, `pt, `k).append!(t)")
    s.run("pt = loadTable('dfs://dml', `pt)\nupdate pt set v = -1 where s = 'a', k = 1")
    s.run("pt = loadTable('dfs://dml', `pt)\ndelete from pt where k = 2, v < 500")
    s.run("addColumn(loadTable('dfs://dml', `pt), `x, DOUBLE)")
    df = s.loadTable(tableName="pt", dbPath="dfs://dml").toDF()
    assert len(df) == 1000 - 125
    assert (df[(df.k == 1) & (df.s == "a")].v == -1).all()
    assert len(df[(df.k == 1) & (df.v == -1)]) == 250
    assert not ((df.k == 2) & (df.v < 500)).any()
    assert df.x.isna().all()
    with pytest.raises(RuntimeError, match="cannot be updated"):
        s.run("pt = loadTable('dfs://dml', `pt)\nupdate pt set k = 9")
