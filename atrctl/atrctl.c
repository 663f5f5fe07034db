#include "atrctl.h"
int main(void) { return 0; }
