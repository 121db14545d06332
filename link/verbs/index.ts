// The verbs API in one import: devices, PDs, CQs, QPs, AHs, the SA client. The IPoIB datagram-mode
// bring-up, as Linux does it (IPOIB-FACTS §3.5, §3.8):
//
//   const dev = await openDevice(transport, { hostName: 'node7', scheduler });   // port INIT
//   await dev.nextAsyncEvent();                         // PORT_ACTIVE once the SM has swept
//   const sa = new SaClient(dev, 1);
//   const bc = await sa.join({ mgid: ipoibBroadcastMgid(0xffff), pkey: 0xffff, joinState: 1 },
//                            IPOIB_BROADCAST_JOIN_MASK);               // Q_Key, MLID, MTU from the SA
//   const pd = dev.allocPd(), cq = dev.createCq(512);
//   const qp = pd.createQp({ qpType: 'UD', sendCq: cq, recvCq: cq });
//   qp.modify({ qpState: 'INIT', portNum: 1, pkeyIndex: dev.findPkeyIndex(1, 0xffff), qkey: bc.qkey });
//   qp.modify({ qpState: 'RTR' }); qp.modify({ qpState: 'RTS', sqPsn: 0 });
//   for (let i = 0; i < 256; i++) qp.postRecv({ wrId: i });           // or with buf: MTU + 40 bytes
//   qp.attachMcast(bc.mgid, bc.mlid);
//   const ah = pd.createAh(ahAttrFromMcMember(bc, 1));
//   qp.postSend({ wrId: 1, data, ud: { ah, remoteQpn: 0xffffff, remoteQkey: bc.qkey } });
//   for await (const wc of cq) ...                                    // or cq.poll(n)
export { openDevice, Device, ProtectionDomain, type AsyncEvent, type AsyncEventType, type PortAttr, type OpenDeviceOptions, type MadReceive } from './device.js';
export { CompletionQueue, WC_GRH, WC_WITH_IMM, type WorkCompletion, type WcStatus, type WcOpcode } from './cq.js';
export { Qp, type QpType, type QpState, type QpAttr, type QpInitAttr, type SendWr, type RecvWr, type AhAttr, type AddressHandle, type RecvFilter } from './qp.js';
export { SaClient, ahAttrFromPathRecord, ahAttrFromMcMember, type SaClientOptions } from './sa-client.js';
export { VerbsError, type VerbsErrorCode } from './errors.js';
