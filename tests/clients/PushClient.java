// The JDK's HttpClient with its defaults (HTTP/2 preferred: a cleartext request carries
// "Upgrade: h2c"), one client for every request, so they share a kept-alive connection.
// Usage: java PushClient.java URL BODY_FILE [URL BODY_FILE ...]; prints "STATUS BODY" per request.
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;

public class PushClient {
    public static void main(String[] args) throws Exception {
        HttpClient client = HttpClient.newHttpClient();
        for (int i = 0; i + 1 < args.length; i += 2) {
            HttpRequest request = HttpRequest.newBuilder(URI.create(args[i]))
                .timeout(Duration.ofSeconds(30))
                .header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofByteArray(Files.readAllBytes(Path.of(args[i + 1]))))
                .build();
            HttpResponse<String> response = client.send(request, HttpResponse.BodyHandlers.ofString());
            System.out.println(response.statusCode() + " " + response.version() + " " + response.body());
        }
    }
}
