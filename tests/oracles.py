"""What the tests check against, written from the definitions, never with the code under
test."""
from aiokafka.partitioner import murmur2


def kafka_partition(key: bytes, partitions: int) -> int:
    """Kafka's default partitioner (the Java client's): murmur2 of the key's bytes made
    positive, modulo the partition count."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions
