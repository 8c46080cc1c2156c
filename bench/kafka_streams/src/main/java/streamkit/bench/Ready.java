package streamkit.bench;

import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.streams.KafkaStreams;

/**
 * Start-up of a Kafka Streams application: W1's topology (groupByKey().aggregate() into a
 * RocksDB store with its changelog) over an empty topic, with a new application id, started
 * until the client is RUNNING (its group joined, its tasks assigned and their stores
 * restored from their empty changelogs). --spawned-at-ms is the wall-clock time (ms since
 * the epoch) at which the driver spawned this JVM; ready_s = RUNNING minus that time, as
 * bench/startup.py measures a streamkit worker from its spawn to its first 200 of /ready.
 */
public final class Ready {
    public static void main(String[] argv) throws Exception {
        Case c = new Case("ready-kafka-streams", argv);
        long spawnedAtMs = Long.parseLong(c.options.get("spawned-at-ms"));
        KafkaStreams streams = Case.streams(W1.topology(c).build(), c.config());
        CountDownLatch running = new CountDownLatch(1);
        long[] runningAtMs = {0};
        streams.setStateListener((now, old) -> {
            if (now == KafkaStreams.State.RUNNING && running.getCount() > 0) {
                runningAtMs[0] = System.currentTimeMillis();
                running.countDown();
            }
        });
        Case.failOnThreadError(streams);
        streams.start();
        if (!running.await(300, TimeUnit.SECONDS)) {
            Case.fail("not RUNNING after 300 s: " + streams.state());
        }
        double readySeconds = (runningAtMs[0] - spawnedAtMs) / 1000.0;
        c.closeAndReport(streams, 0, readySeconds, Map.of("ready_s", readySeconds,
                "settings", "Kafka Streams defaults; W1's topology over an empty topic"));
    }
}
