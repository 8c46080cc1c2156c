"""Fixed sequences that programs send themselves (from timers), shared with the tests'
oracles. No app is built here."""

GREETINGS = [f"hello {i}" for i in range(100)]            # hello_world
TASKS = [(f"task-{i}", i * 7 % 23, i * 5 % 11, i % 3) for i in range(40)]  # task_queue: id, x, y, z
LEADER_GREETINGS = [f"greeting {i}" for i in range(10)]  # leader
DEVICES = 30                                                # bound_agent: device ids 0..29
RPC_VALUES = [30.3, 40.4, 50.5, 60.6, 70.7, 80.8, 90.9]    # rpc
RPC_ASK = [1.5, 2.0, 12.25]                                 # rpc: mul.ask directly
TABLETEST_ITERATIONS = 150                                  # tabletest: values 0.. per partition
TABLETEST_PARTITIONS = 4
