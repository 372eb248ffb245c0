"""The official DolphinDB Python client against the tutorial's cluster (`local_cluster`): the
tutorial's Step 5 on datanode1, Step 6 and the partitioned appender."""
import os

import numpy as np
import pandas as pd
import pytest

from local_cluster import IPS, login as _login, running, script as _script
from pooled import partitioned_append


@pytest.fixture(scope="module")
def cluster():
    binary = os.environ.get("PORPOISE_BIN")
    if not binary:
        pytest.fail("set PORPOISE_BIN to the porpoise binary")
    with running(binary) as leader:
        yield leader


def test_step_5_verbatim_on_datanode1_and_the_count_on_datanode2(cluster):
    s = _login(IPS[0], 8802)
    s.run(_script("tutorial_step5.dos"))
    other = _login(IPS[1], 8802)
    q = other.run('select count(*) from loadTable("dfs://testDB", "testTB") group by date(DateTime)')
    assert q["count"].tolist() == [1210000]
    # On the leader controller, as in DolphinDB: each partition on two distinct hosts.
    ctl = _login(*cluster)
    status = ctl.run("getClusterChunksStatus()")
    assert len(status) >= 1
    for replicas in status["replicas"]:
        nodes = {r.split(":")[0] for r in replicas.split(",")}
        assert len(nodes) == 2, replicas
    assert set(status["state"]) == {"COMPLETE"}


def test_step_6_and_the_partitioned_appender_on_the_cluster(cluster):
    s = _login(IPS[0], 8802)
    if not s.run('existsDatabase("dfs://testDB")'):
        s.run(_script("tutorial_step5.dos"))
    s.run(_script("tutorial_step6.dos"))
    assert len(s.run("result")) == 5000
    s.run("if (existsDatabase('dfs://apps')) { dropDatabase('dfs://apps') }\n"
          "db = database('dfs://apps', VALUE, 2023.01.01..2023.01.02)\n"
          "t = table(1 2 as id, 2023.01.01 2023.01.02 as d, 0.5 1.5 as v)\n"
          "db.createPartitionedTable(table=t, tableName='pt', partitionColumns=`d)")
    many = pd.DataFrame({"id": np.array([2, 3, 4], dtype=np.int32),
                         "d": pd.to_datetime(["2023-01-01", "2023-01-02", "2023-01-03"]), "v": [1.0, 2.0, 3.0]})
    assert partitioned_append(IPS[2], 8802, "dfs://apps", "pt", "d", many) in (3, None)
    counts = _login(IPS[1], 8802).run("select count(*) from loadTable('dfs://apps', 'pt') group by d")
    assert counts["count"].tolist() == [1, 1, 1]
