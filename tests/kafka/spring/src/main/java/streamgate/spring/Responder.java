package streamgate.spring;

import java.nio.charset.StandardCharsets;
import java.util.Map;

import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.springframework.context.annotation.AnnotationConfigApplicationContext;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;
import org.springframework.kafka.annotation.EnableKafka;
import org.springframework.kafka.annotation.KafkaListener;
import org.springframework.kafka.config.ConcurrentKafkaListenerContainerFactory;
import org.springframework.kafka.core.ConsumerFactory;
import org.springframework.kafka.core.DefaultKafkaConsumerFactory;
import org.springframework.kafka.core.DefaultKafkaProducerFactory;
import org.springframework.kafka.core.KafkaTemplate;
import org.springframework.kafka.core.ProducerFactory;
import org.springframework.kafka.support.KafkaHeaders;
import org.springframework.messaging.handler.annotation.Header;
import org.springframework.messaging.handler.annotation.SendTo;

/**
 * The textbook Spring Kafka responder, unchanged for streamgate: a {@code @KafkaListener} whose
 * {@code @SendTo} (no topic: the request's {@code kafka_replyTopic}) sends the return value back;
 * Spring copies {@code kafka_correlationId} (and honours {@code kafka_replyPartition}) by itself.
 * The reply echoes the correlation id it saw, so a test can tell that it is streamgate's ASCII id.
 *
 * <p>Usage: {@code Responder BOOTSTRAP REQUEST_TOPIC}; answers (from the topic's beginning, as the
 * group has no offsets yet) until killed.
 */
public final class Responder {
    private Responder() {}

    public static void main(String[] args) throws Exception {
        if (args.length != 2) {
            System.err.println("usage: Responder BOOTSTRAP REQUEST_TOPIC");
            System.exit(2);
        }
        System.setProperty("sg.bootstrap", args[0]);
        System.setProperty("sg.topic", args[1]);
        AnnotationConfigApplicationContext context = new AnnotationConfigApplicationContext(Config.class);
        Runtime.getRuntime().addShutdownHook(new Thread(context::close));
        Thread.currentThread().join();
    }

    @Configuration
    @EnableKafka
    public static class Config {
        @Bean
        public ProducerFactory<String, String> producerFactory() {
            return new DefaultKafkaProducerFactory<>(Map.of(
                    ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, System.getProperty("sg.bootstrap"),
                    ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class,
                    ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class));
        }

        @Bean
        public KafkaTemplate<String, String> kafkaTemplate(ProducerFactory<String, String> producerFactory) {
            return new KafkaTemplate<>(producerFactory);
        }

        @Bean
        public ConsumerFactory<String, String> consumerFactory() {
            return new DefaultKafkaConsumerFactory<>(Map.of(
                    ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, System.getProperty("sg.bootstrap"),
                    ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest",
                    ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class,
                    ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class));
        }

        @Bean
        public ConcurrentKafkaListenerContainerFactory<String, String> kafkaListenerContainerFactory(
                ConsumerFactory<String, String> consumerFactory, KafkaTemplate<String, String> kafkaTemplate) {
            ConcurrentKafkaListenerContainerFactory<String, String> factory = new ConcurrentKafkaListenerContainerFactory<>();
            factory.setConsumerFactory(consumerFactory);
            factory.setReplyTemplate(kafkaTemplate);
            return factory;
        }

        @Bean
        public Listener listener() {
            return new Listener();
        }
    }

    public static class Listener {
        @KafkaListener(id = "streamgate-spring-responder", topics = "${sg.topic}", groupId = "streamgate-spring-responder")
        @SendTo
        public String answer(String request, @Header(KafkaHeaders.CORRELATION_ID) byte[] correlationId) {
            String id = new String(correlationId, StandardCharsets.US_ASCII);
            return "{\"repliedBy\":\"spring\",\"correlationId\":\"" + id + "\",\"request\":" + request + "}";
        }
    }
}
