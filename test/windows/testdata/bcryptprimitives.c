/*
 * bcryptprimitives.dll for Wine 8.0, which lacks it: Go >= 1.22 programs
 * load ProcessPrng from it at startup (runtime.osinit) and crash without it.
 * ProcessPrng fills a buffer with random bytes; here from RtlGenRandom
 * (advapi32's SystemFunction036), which takes at most ULONG_MAX bytes a call.
 * Test-only: built by test/windows with x86_64-w64-mingw32-gcc and copied
 * into the Wine prefix's system32. Real Windows (8 and later) ships its own.
 */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
	while (len > 0) {
		ULONG n = len > 0x10000000 ? 0x10000000 : (ULONG)len;
		if (!SystemFunction036(data, n))
			return FALSE;
		data += n;
		len -= n;
	}
	return TRUE;
}
