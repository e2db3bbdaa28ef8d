/*
 * LoopbackHAService keeps the broker's HA (master-slave replication) listener
 * on loopback. RocketMQ 5.3.3 binds that listener to the wildcard address with
 * no setting to change it (DefaultHAService.AcceptSocketService builds
 * new InetSocketAddress(haListenPort)), and test servers must not be reachable
 * from outside the machine. The broker picks this class up through
 * META-INF/service/org.apache.rocketmq.store.ha.HAService, which its
 * ServiceProvider consults before falling back to DefaultHAService.
 */
package org.evchat.chatd.testinfra;

import java.io.IOException;
import java.lang.reflect.Field;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import org.apache.rocketmq.store.DefaultMessageStore;
import org.apache.rocketmq.store.ha.DefaultHAService;

public class LoopbackHAService extends DefaultHAService {
    @Override
    public void init(DefaultMessageStore store) throws IOException {
        super.init(store);
        int port = store.getMessageStoreConfig().getHaListenPort();
        try {
            // The address is a private final field read only when the listener
            // binds in start(), so replacing it after init is enough.
            Field f = DefaultHAService.AcceptSocketService.class.getDeclaredField("socketAddressListen");
            f.setAccessible(true);
            f.set(this.acceptSocketService, new InetSocketAddress(InetAddress.getLoopbackAddress(), port));
        } catch (ReflectiveOperationException e) {
            throw new IOException("cannot bind the HA listener to loopback", e);
        }
    }
}
