package streamgate.spring;

import java.time.Duration;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.springframework.kafka.core.DefaultKafkaConsumerFactory;
import org.springframework.kafka.core.DefaultKafkaProducerFactory;
import org.springframework.kafka.listener.ContainerProperties;
import org.springframework.kafka.listener.KafkaMessageListenerContainer;
import org.springframework.kafka.requestreply.ReplyingKafkaTemplate;
import org.springframework.kafka.requestreply.RequestReplyFuture;

/**
 * Spring Kafka's request-reply client ({@code ReplyingKafkaTemplate}) calling a worker written for
 * streamgate, through the same topics: the worker must copy Spring's correlation id (16 binary
 * bytes, not streamgate's ASCII id) and reply to {@code kafka_replyTopic}. Each request's body
 * is in the test worker's contract ({"body": ...} is echoed back).
 *
 * <p>Usage: {@code Client BOOTSTRAP REQUEST_TOPIC REPLY_TOPIC COUNT}; exit 0 when every request got
 * its own reply, 1 otherwise.
 */
public final class Client {
    private Client() {}

    public static void main(String[] args) throws Exception {
        if (args.length != 4) {
            System.err.println("usage: Client BOOTSTRAP REQUEST_TOPIC REPLY_TOPIC COUNT");
            System.exit(2);
        }
        String bootstrap = args[0], requestTopic = args[1], replyTopic = args[2];
        int count = Integer.parseInt(args[3]);
        DefaultKafkaProducerFactory<String, String> producerFactory = new DefaultKafkaProducerFactory<>(Map.of(
                ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap,
                ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class,
                ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class));
        DefaultKafkaConsumerFactory<String, String> consumerFactory = new DefaultKafkaConsumerFactory<>(Map.of(
                ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap,
                ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "latest",
                ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class,
                ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class));
        ContainerProperties properties = new ContainerProperties(replyTopic);
        properties.setGroupId("streamgate-spring-client");
        KafkaMessageListenerContainer<String, String> replies = new KafkaMessageListenerContainer<>(consumerFactory, properties);
        ReplyingKafkaTemplate<String, String, String> template = new ReplyingKafkaTemplate<>(producerFactory, replies);
        template.setDefaultReplyTimeout(Duration.ofSeconds(60));
        template.start();
        int ok = 0;
        try {
            if (!template.waitForAssignment(Duration.ofSeconds(90))) {
                System.err.println("spring client: reply partitions not assigned within 90 s");
                System.exit(1);
            }
            for (int i = 0; i < count; ++i) {
                String expected = "{\"n\":" + i + ",\"from\":\"spring\"}";
                ProducerRecord<String, String> request = new ProducerRecord<>(requestTopic, "k" + i, "{\"body\":" + expected + "}");
                RequestReplyFuture<String, String, String> future = template.sendAndReceive(request);
                ConsumerRecord<String, String> reply = future.get(90, TimeUnit.SECONDS);
                String got = reply.value().replace(" ", "");
                if (got.equals(expected)) {
                    ++ok;
                } else {
                    System.err.println("spring client: request " + i + " got " + reply.value());
                }
            }
        } finally {
            template.stop();
            producerFactory.destroy();
        }
        System.out.println("spring client: " + ok + "/" + count + " replies");
        System.exit(ok == count ? 0 : 1);
    }
}
