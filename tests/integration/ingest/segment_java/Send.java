// Sends a track and an identify with the real Segment Java SDK, changing only its endpoint.
// Run as a single-file program: java -cp 'LIBS/*' Send.java WRITE_KEY ENDPOINT RUN_ID
// Prints "ok <messageId> <type>" or "failed <messageId> <error>" for each message.
import com.segment.analytics.Analytics;
import com.segment.analytics.Callback;
import com.segment.analytics.messages.IdentifyMessage;
import com.segment.analytics.messages.Message;
import com.segment.analytics.messages.TrackMessage;
import java.util.Map;

public class Send {
  public static void main(String[] args) {
    Callback report = new Callback() {
      @Override public void success(Message message) {
        System.out.println("ok " + message.messageId() + " " + message.type());
      }

      @Override public void failure(Message message, Throwable error) {
        System.out.println("failed " + message.messageId() + " " + error);
      }
    };
    Analytics analytics = Analytics.builder(args[0]).endpoint(args[1]).callback(report).build();
    analytics.enqueue(TrackMessage.builder("Order Completed").userId("java-" + args[2])
        .properties(Map.of("run", args[2], "revenue", 42)));
    analytics.enqueue(IdentifyMessage.builder().userId("java-" + args[2])
        .traits(Map.of("run", args[2], "plan", "pro")));
    analytics.flush();
    analytics.shutdown();  // waits until the queue is sent
  }
}
