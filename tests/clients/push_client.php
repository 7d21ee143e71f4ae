<?php
// PHP's curl extension with its defaults: one handle for every request (keep-alive), and
// libcurl's "Expect: 100-continue" on larger bodies.
// Usage: php push_client.php URL BODY_FILE [URL BODY_FILE ...]; prints "STATUS BODY" per request.
$handle = curl_init();
for ($i = 1; $i + 1 < $argc; $i += 2) {
    curl_setopt_array($handle, [
        CURLOPT_URL => $argv[$i],
        CURLOPT_POST => true,
        CURLOPT_POSTFIELDS => file_get_contents($argv[$i + 1]),
        CURLOPT_HTTPHEADER => ['Content-Type: application/json'],
        CURLOPT_RETURNTRANSFER => true,
        CURLOPT_TIMEOUT => 30,
    ]);
    $answer = curl_exec($handle);
    if ($answer === false) {
        fwrite(STDERR, curl_error($handle) . "\n");
        exit(1);
    }
    echo curl_getinfo($handle, CURLINFO_RESPONSE_CODE), ' HTTP/', curl_getinfo($handle, CURLINFO_HTTP_VERSION) == CURL_HTTP_VERSION_1_0 ? '1.0' : '1.1', ' ', $answer, "\n";
}
curl_close($handle);
