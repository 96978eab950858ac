import com.sun.net.httpserver.HttpServer;
import java.io.FileWriter;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;

/** A legacy JVM app: logs every request to /opt/app/logs/app.log and answers it. */
public class App {
    public static void main(String[] args) throws IOException {
        FileWriter log = new FileWriter("/opt/app/logs/app.log", true);
        log.write("started as uid " + new com.sun.security.auth.module.UnixSystem().getUid() + "\n");
        log.flush();
        HttpServer server = HttpServer.create(new InetSocketAddress(8080), 0);
        server.createContext("/", exchange -> {
            synchronized (log) {
                log.write(exchange.getRequestMethod() + " " + exchange.getRequestURI() + "\n");
                log.flush();
            }
            byte[] body = ("jvm app java=" + System.getProperty("java.version") + "\n")
                .getBytes(StandardCharsets.UTF_8);
            exchange.sendResponseHeaders(200, body.length);
            try (OutputStream out = exchange.getResponseBody()) {
                out.write(body);
            }
        });
        server.start();
    }
}
