// The Java client of the chaos harness: Kafka's own client library (kafka-clients), driven
// the same way as the harness's librdkafka clients and writing the same JSON-lines history.
// It runs with Java's source launcher, so there is no build step:
//
//   java -cp "$(scripts/kafka-cluster.sh libs)/*" jepsen/java/ChaosClient.java ROLE --bootstrap ...
//
// Roles: producer, assign-consumer, final-reader (see jepsen/src/workload/mod.rs for the
// options, which both clients share). Every send is an invoke line, then ok (with its
// offset) or info: a send that failed may still have been written, so none is definite.

import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.BufferedWriter;
import java.io.FileWriter;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.Semaphore;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

public class ChaosClient {
    private final Map<String, String> options;
    private final BufferedWriter out;
    private final ObjectMapper json = new ObjectMapper();
    private final double epochMs;

    ChaosClient(Map<String, String> options) throws IOException {
        this.options = options;
        this.out = new BufferedWriter(new FileWriter(option("out")));
        this.epochMs = Double.parseDouble(option("epoch-ms"));
    }

    public static void main(String[] args) throws Exception {
        if (args.length < 1 || args.length % 2 != 1) {
            System.err.println("usage: ChaosClient producer|assign-consumer|final-reader --bootstrap HOSTS --topic T ...");
            System.exit(2);
        }
        Map<String, String> options = new HashMap<>();
        for (int i = 1; i < args.length; i += 2) {
            options.put(args[i].replaceFirst("^--", ""), args[i + 1]);
        }
        ChaosClient client = new ChaosClient(options);
        switch (args[0]) {
            case "producer" -> client.produce();
            case "assign-consumer" -> client.consume("assign");
            case "final-reader" -> System.exit(client.readToEnd() ? 0 : 1);
            default -> {
                System.err.println("unknown role " + args[0]);
                System.exit(2);
            }
        }
    }

    String option(String name) {
        String value = options.get(name);
        if (value == null) {
            System.err.println("missing --" + name);
            System.exit(2);
        }
        return value;
    }

    int partitions() {
        return Integer.parseInt(option("partitions"));
    }

    /** Writes one history line; synchronized because producer callbacks run on another thread. */
    synchronized void event(String kind, String type, Map<String, Object> fields) {
        Map<String, Object> line = new LinkedHashMap<>();
        line.put("time_ms", System.currentTimeMillis() - epochMs);
        line.put("process", option("process"));
        line.put("client", "java");
        line.put("kind", kind);
        line.put("type", type);
        line.putAll(fields);
        try {
            out.write(json.writeValueAsString(line));
            out.newLine();
            out.flush();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    static Map<String, Object> fields(Object... keyValues) {
        Map<String, Object> map = new LinkedHashMap<>();
        for (int i = 0; i < keyValues.length; i += 2) {
            map.put((String) keyValues[i], keyValues[i + 1]);
        }
        return map;
    }

    void produce() throws InterruptedException {
        Properties config = new Properties();
        config.put("bootstrap.servers", option("bootstrap"));
        config.put("enable.idempotence", "true");
        config.put("acks", "all");
        config.put("retries", Integer.toString(Integer.MAX_VALUE));
        config.put("delivery.timeout.ms", "30000");
        config.put("request.timeout.ms", "15000");
        config.put("linger.ms", "5");
        int perPartition = Math.max(2, Integer.parseInt(options.getOrDefault("max-in-flight", "32")) / partitions());
        // Each partition has its own share of sends in flight, so one unreachable partition
        // does not stall the others (the same rule as the librdkafka producer).
        Semaphore[] room = new Semaphore[partitions()];
        for (int p = 0; p < room.length; p++) {
            room[p] = new Semaphore(perPartition);
        }
        long started = System.currentTimeMillis();
        String topic = option("topic");
        try (KafkaProducer<String, String> producer = new KafkaProducer<>(config, new StringSerializer(), new StringSerializer())) {
            long sent = 0;
            while (running(started)) {
                int partition = (int) (sent % partitions());
                if (!room[partition].tryAcquire(10, java.util.concurrent.TimeUnit.MILLISECONDS)) {
                    sent++;
                    continue;
                }
                String value = option("process") + "-" + sent++;
                event("send", "invoke", fields("partition", partition, "value", value));
                try {
                    producer.send(new ProducerRecord<>(topic, partition, null, value), (metadata, error) -> {
                        room[partition].release();
                        if (error == null) {
                            event("send", "ok", fields("partition", partition, "offset", metadata.offset(), "value", value));
                        } else {
                            event("send", "info", fields("partition", partition, "value", value, "error", describe(error)));
                        }
                    });
                } catch (RuntimeException e) {
                    room[partition].release();
                    event("send", "info", fields("partition", partition, "value", value, "error", describe(e)));
                }
            }
            producer.flush();
        }
    }

    static String describe(Throwable error) {
        return error.getClass().getSimpleName() + ": " + error.getMessage();
    }

    KafkaConsumer<String, String> assignedFromBeginning(List<TopicPartition> partitions) {
        Properties config = new Properties();
        config.put("bootstrap.servers", option("bootstrap"));
        config.put("enable.auto.commit", "false");
        KafkaConsumer<String, String> consumer = new KafkaConsumer<>(config, new StringDeserializer(), new StringDeserializer());
        consumer.assign(partitions);
        consumer.seekToBeginning(partitions);
        return consumer;
    }

    List<TopicPartition> allPartitions() {
        List<TopicPartition> list = new ArrayList<>();
        for (int p = 0; p < partitions(); p++) {
            list.add(new TopicPartition(option("topic"), p));
        }
        return list;
    }

    /** True until the harness creates the stop file, or the time limit passes. */
    boolean running(long startedMs) {
        return System.currentTimeMillis() - startedMs < Long.parseLong(option("duration-ms"))
            && !java.nio.file.Files.exists(java.nio.file.Path.of(option("stop-file")));
    }

    void consume(String mode) {
        List<TopicPartition> partitions = allPartitions();
        try (KafkaConsumer<String, String> consumer = assignedFromBeginning(partitions)) {
            event("assign", "ok", fields("mode", mode, "partitions", partitions.stream().map(TopicPartition::partition).toList()));
            long started = System.currentTimeMillis();
            while (running(started)) {
                pollOnce(consumer, mode);
            }
        }
    }

    /** Polls once and records what came; returns the records. */
    List<ConsumerRecord<String, String>> pollOnce(KafkaConsumer<String, String> consumer, String mode) {
        List<ConsumerRecord<String, String>> got = new ArrayList<>();
        try {
            ConsumerRecords<String, String> records = consumer.poll(Duration.ofMillis(100));
            records.forEach(got::add);
        } catch (RuntimeException e) {
            event("poll", "info", fields("mode", mode, "error", describe(e)));
            return got;
        }
        if (!got.isEmpty()) {
            List<Map<String, Object>> lines = new ArrayList<>();
            for (ConsumerRecord<String, String> r : got) {
                lines.add(fields("partition", r.partition(), "offset", r.offset(), "value", r.value()));
            }
            event("poll", "ok", fields("mode", mode, "records", lines));
        }
        return got;
    }

    boolean readToEnd() {
        List<TopicPartition> partitions = allPartitions();
        long deadline = System.currentTimeMillis() + Long.parseLong(options.getOrDefault("timeout-ms", "120000"));
        try (KafkaConsumer<String, String> consumer = assignedFromBeginning(partitions)) {
            Map<TopicPartition, Long> ends = consumer.endOffsets(partitions);
            while (System.currentTimeMillis() < deadline) {
                pollOnce(consumer, "final");
                boolean done = partitions.stream().allMatch(tp -> consumer.position(tp) >= ends.get(tp));
                if (done) {
                    return true;
                }
            }
            return false;
        }
    }
}
