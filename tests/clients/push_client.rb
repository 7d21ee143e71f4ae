# Ruby's Net::HTTP with its defaults, one started session for every request (keep-alive).
# Usage: ruby push_client.rb URL BODY_FILE [URL BODY_FILE ...]; prints "STATUS BODY" per request.
require "net/http"
require "uri"

pairs = ARGV.each_slice(2).to_a
first = URI(pairs[0][0])
Net::HTTP.start(first.host, first.port, read_timeout: 30) do |http|
  pairs.each do |url, file|
    request = Net::HTTP::Post.new(URI(url))
    request["Content-Type"] = "application/json"
    request.body = File.binread(file)
    response = http.request(request)
    puts "#{response.code} HTTP/#{response.http_version} #{response.body}"
  end
end
